"""The pumping dashboard in headless Chromium: charts, a pumped block, unblocking it by hand.

The test keeps its screenshot at tests/e2e/screenshots/admin.png (docs/admin.png is a copy).
"""

from __future__ import annotations

import functools
import random
import shutil
import time
from pathlib import Path

import redis
import requests
from playwright.sync_api import Browser, expect

from smscode.adapters.redis_store import RedisStore
from smscode.domain.policy import Limits
from smscode.domain.pumping import BlockWatch, PumpingRule
from smscode.service_layer.ports import FinalState, Send
from tests.conftest import ADMIN_KEY
from tests.e2e.test_browser import _keep_errors, browser  # noqa: F401 - the shared fixture
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import block_phones, send_and_verify

SCREENSHOTS = Path(__file__).parent / "screenshots"
# Clients told apart by X-Forwarded-For: a block is refused to everyone only on sends from
# several networks. Inline delivery, as the module's own server has no worker of its own.
SERVER_ENV = {"DELIVERY_BACKEND": "inline", "TRUSTED_PROXY_COUNT": "1"}
LIMITS = Limits(
    code_ttl=300, resend_interval=0, phone_daily=10**6, ip_hourly=10**6,
    prefix_hourly=10**6, global_minute=10**6,
)  # fmt: skip
HOUR_MS = 3_600_000


def replay_a_day(client: redis.Redis) -> None:
    """23 past hours of traffic through the real scripts, on a clock set back hour by hour.

    Real users in a few busy blocks verify about 80% of their codes; one block was pumped
    six hours ago and refused after its first 20 sends. The current hour is left to HTTP.
    """
    rule = PumpingRule()
    now = int(time.time() * 1000)
    busy = [block_phones(1)[0][:7] for _ in range(8)]
    pumped = block_phones(1)[0][:7]
    rng = random.Random(19)
    for hours_ago in range(23, 0, -1):
        clock_ms = now - hours_ago * HOUR_MS
        store = RedisStore(client, clock=functools.partial(int, clock_ms))
        daytime = 12 <= (time.gmtime(clock_ms / 1000).tm_hour + 8) % 24 <= 23
        phones = [
            phone
            for block in busy
            for phone in block_phones(rng.randint(3, 9 if daytime else 4), block)
        ]
        if hours_ago == 6:
            phones += block_phones(60, pumped)
        for n, phone in enumerate(phones):
            e164, watch = f"+86{phone}", BlockWatch.of(f"+86{phone}", rule)
            request_id = f"{hours_ago:02d}{n:030d}"
            refused = store.issue(Send(
                phone=e164, masked="x", ip=f"10.{hours_ago}.{n % 256}.7", code_hash="h",
                message_id=request_id, request_id=request_id, limits=LIMITS, pumping=watch,
                purpose="login",
            ))  # fmt: skip
            if refused is not None:
                continue
            delivered: FinalState = "failed" if rng.random() < 0.03 else "sent"
            store.finish(request_id=request_id, message_id=request_id, state=delivered)
            if phone[:7] != pumped and delivered == "sent" and rng.random() < 0.82:
                store.verify(
                    phone=e164, candidate_hash="h", max_attempts=5, daily_failures=10**6,
                    pumping=watch, client="198.51.100.7", client_failures=10**6,
                )  # fmt: skip


def test_the_dashboard_shows_a_pumped_block_in_its_charts_and_unblocks_it(
    browser: Browser,  # noqa: F811
    api: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
    tmp_path: Path,
) -> None:
    # given: a day of traffic, and now a bot pumping one block while real users verify
    replay_a_day(redis_client)
    for phone in block_phones(6):
        send_and_verify(api, phone, fake_ronglian.last_code)
    pumped = block_phones(24)
    answers = [
        requests.post(
            f"{api}/codes",
            json={"phone": p},
            headers={"X-Forwarded-For": f"10.9.{n}.7"},
            timeout=10,
        )
        for n, p in enumerate(pumped)
    ]
    assert [a.status_code for a in answers].count(429) == 4
    block = pumped[0][:7]

    # then: without a key the page answers 401 with a Basic challenge (a browser prompts)
    anonymous = requests.get(f"{api}/admin", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic ")

    # when: the operator opens the dashboard with the key
    context = browser.new_context(
        viewport={"width": 1360, "height": 900},
        http_credentials={"username": ADMIN_KEY[0], "password": ADMIN_KEY[1]},
        timezone_id="Asia/Shanghai",
        locale="en-US",
        color_scheme="light",
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _keep_errors(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{api}/admin")
    expect(page.locator("body")).to_have_attribute("data-loaded", "true")

    # then: 24 hourly bars, the conversion line, the pumped block blocked and ranked
    assert page.locator("#chart-volume rect.bar.sends").count() == 24
    assert page.locator("#chart-volume rect.bar.refused").count() == 2  # 6 h ago, and now
    expect(page.locator("#chart-conversion path.line")).to_have_count(1)
    expect(page.locator("#chart-conversion circle.dot")).to_have_count(24)
    row = page.locator("#blocked tbody tr", has_text=block)
    expect(row).to_contain_text("low conversion")
    expect(row).to_contain_text("20 / 0")
    expect(page.locator("#blocks tbody tr.is-blocked", has_text=block)).to_contain_text("0%")
    expect(page.locator("#t-refused")).not_to_have_text("0")
    expect(page.locator("#delivery li", has_text="sent")).to_be_visible()
    page.screenshot(path=tmp_path / "admin.png", full_page=True)
    SCREENSHOTS.mkdir(exist_ok=True)
    shutil.copy(tmp_path / "admin.png", SCREENSHOTS / "admin.png")

    # when: the operator unblocks it
    row.get_by_role("button", name="Unblock").click()
    # then: it leaves the list, and its numbers get codes again
    expect(page.locator("#blocked tbody tr", has_text=block)).to_have_count(0)
    again = requests.post(
        f"{api}/codes", json={"phone": pumped[-1]}, headers={"X-Forwarded-For": "10.9.99.7"},
        timeout=10,
    )  # fmt: skip
    assert again.status_code == 202, again.text
    # and a block set by hand shows up, to be lifted the same way
    page.fill("#block-input", block)
    page.click("#block-form button[type=submit]")
    expect(page.locator("#blocked tbody tr", has_text=block)).to_contain_text("by hand")
    assert problems == []
    context.close()


def test_the_dashboard_loads_from_a_url_with_its_credentials_and_shows_a_network_refusal(
    browser: Browser,  # noqa: F811
    api: str,
    redis_client: redis.Redis,
    fake_ronglian: FakeRonglian,
) -> None:
    # given: one network refused a block on its own unverified sends
    pumped = block_phones(21)
    for phone in pumped:
        headers = {"X-Forwarded-For": "203.0.113.9"}
        requests.post(f"{api}/codes", json={"phone": phone}, headers=headers, timeout=10)
    # when: the operator opens http://id:secret@host/admin, as a bookmark may hold it
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda message: _keep_errors(message, problems))
    page.on("pageerror", lambda error: problems.append(str(error)))
    host = api.removeprefix("http://")
    page.goto(f"http://{ADMIN_KEY[0]}:{ADMIN_KEY[1]}@{host}/admin")
    # then: its data loads (fetch refuses a URL with credentials in it), and the refusal is
    # shown as one network's, that network named
    expect(page.locator("body")).to_have_attribute("data-loaded", "true")
    row = page.locator("#blocked tbody tr", has_text=pumped[0][:7])
    expect(row).to_contain_text("one network's low conversion: 203.0.113.0/24")
    expect(row).to_contain_text("20 / 0")
    expect(page.locator("#error")).to_be_hidden()
    assert problems == []
    context.close()
