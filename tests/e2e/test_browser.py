"""The demo page in headless Chromium: send, count down, verify; invalid phone; rate limited."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.conftest import TOKEN_AUDIENCE
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import fresh_phone

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, driven by Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium is missing: `make test` installs it with apt-get")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
        yield launched
        launched.close()


def open_page(browser: Browser, api: str, locale: str) -> tuple[Page, list[str]]:
    """A fresh page in its own context (no shared state) and the console errors it logs."""
    context = browser.new_context(locale=locale, viewport={"width": 480, "height": 720})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _keep_errors(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(api)
    return page, problems


def _keep_errors(message: ConsoleMessage, problems: list[str]) -> None:
    # CSP violations and script errors land here; the API's own 4xx answers are expected.
    expected = re.match(r"Failed to load resource: .* status of 4\d\d", message.text)
    if message.type == "error" and not expected:
        problems.append(message.text)


def test_send_count_down_and_verify_in_english(
    browser: Browser, api: str, fake_ronglian: FakeRonglian, tmp_path: Path
) -> None:
    # given
    page, problems = open_page(browser, api, "en-US")
    phone = fresh_phone()
    expect(page.locator("h1")).to_have_text("Create your account")
    # when: a phone is typed and the code sent
    page.fill("#phone", phone)
    page.click("#send")
    # then: the button counts down and the fake Ronglian gets the code
    expect(page.locator("#send")).to_have_text(re.compile(r"^Resend in \d+ s$"))
    expect(page.locator("#send")).to_be_disabled()
    expect(page.locator("#status")).to_have_text("Code sent. It is valid for 5 min.")
    [sms] = fake_ronglian.wait_for(1)
    assert sms.to == phone
    # when: the code is typed and verified
    page.fill("#code", sms.datas[0])
    page.click("#verify")
    # then
    expect(page.locator("#status")).to_have_text("Phone number verified")
    expect(page.locator("#status")).to_have_attribute("data-state", "success")
    expect(page.locator("#token")).to_be_hidden()  # no signing key: no token, nothing to show
    page.screenshot(path=tmp_path / "verified-en.png", full_page=True)
    assert problems == []


def test_a_verified_phone_shows_the_token_claims(
    browser: Browser, token_api: str, fake_ronglian: FakeRonglian, tmp_path: Path
) -> None:
    # given: the server signs tokens
    page, problems = open_page(browser, token_api, "en-US")
    phone = fresh_phone()
    page.fill("#phone", phone)
    page.click("#send")
    [sms] = fake_ronglian.wait_for(1)
    # when
    page.fill("#code", sms.datas[0])
    page.click("#verify")
    # then: the decoded claims of the token the server answered
    expect(page.locator("#status")).to_have_text("Phone number verified")
    expect(page.locator("#token")).to_be_visible()
    claim = page.locator("#claims dd")
    expect(claim.and_(page.locator("[data-claim=sub]"))).to_have_text(f"+86{phone}")
    expect(claim.and_(page.locator("[data-claim=phone_number_verified]"))).to_have_text("true")
    expect(claim.and_(page.locator("[data-claim=purpose]"))).to_have_text("login")
    expect(claim.and_(page.locator("[data-claim=aud]"))).to_have_text(TOKEN_AUDIENCE)
    expect(claim.and_(page.locator("[data-claim=exp]"))).to_have_text(
        re.compile(r"^\d{10} \(.+\)$")
    )
    page.screenshot(path=tmp_path / "verified-token-en.png", full_page=True)
    assert problems == []


def test_invalid_phone_is_caught_in_the_page_and_by_the_server(
    browser: Browser, api: str, fake_ronglian: FakeRonglian
) -> None:
    page, problems = open_page(browser, api, "en-US")
    # a number of the wrong shape never leaves the page
    page.fill("#phone", "12345")
    page.click("#send")
    expect(page.locator("#phone-error")).to_be_visible()
    expect(page.locator("#phone-error")).to_contain_text("11-digit")
    expect(page.locator("#phone")).to_have_attribute("aria-invalid", "true")
    # a plausible number in an unassigned block is refused by the server
    page.fill("#phone", "14012345678")
    expect(page.locator("#phone-error")).to_be_hidden()
    page.click("#send")
    expect(page.locator("#status")).to_have_text("That is not a mainland China mobile number.")
    expect(page.locator("#status")).to_have_attribute("data-state", "error")
    expect(page.locator("#send")).to_be_enabled()
    assert fake_ronglian.accepted == []
    assert problems == []


def test_a_second_send_from_a_fresh_page_shows_the_server_wait_in_chinese(
    browser: Browser, api: str, fake_ronglian: FakeRonglian, tmp_path: Path
) -> None:
    # given: a code was just sent to the phone from one page
    phone = fresh_phone()
    first, _ = open_page(browser, api, "zh-CN")
    first.fill("#phone", phone)
    first.click("#send")
    expect(first.locator("#send")).to_be_disabled()
    # when: a fresh page (no countdown of its own) asks again
    page, problems = open_page(browser, api, "zh-CN")
    expect(page.locator("h1")).to_have_text("创建账号")
    page.fill("#phone", phone)
    page.click("#send")
    # then: the server's 429 shows its retry_after, and the button waits that long
    status = page.locator("#status")
    expect(status).to_have_attribute("data-state", "error")
    expect(status).to_have_text(re.compile(r"^获取验证码过于频繁，请 \d+ 秒后再试。$"))
    expect(page.locator("#send")).to_have_text(re.compile(r"^\d+ 秒后重发$"))
    expect(page.locator("#send")).to_be_disabled()
    page.screenshot(path=tmp_path / "rate-limited-zh.png", full_page=True)
    assert problems == []
