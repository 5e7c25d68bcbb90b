"""SMS pumping: a block with many unverified sends is refused, healthy blocks never are.

Clients are told apart by X-Forwarded-For behind one trusted proxy: a block is refused for
everyone only on unverified sends from several client networks (PUMPING_MIN_NETWORKS, 5 by
default), and one network alone gets refused that block alone.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator

import pytest
import redis
import requests

from smscode.domain.phones import normalize
from tests.conftest import ADMIN_KEY, stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, block_phones, send_and_verify

MIN_SENDS = 20  # PUMPING_MIN_SENDS's default
SERVER_ENV = {"DELIVERY_BACKEND": "inline", "TRUSTED_PROXY_COUNT": "1"}
_NETWORKS = itertools.count(1)


def new_client() -> str:
    """An address in an IPv4 /24 no earlier call gave."""
    n = next(_NETWORKS)
    return f"10.{n // 256 % 256}.{n % 256}.7"


def send(api: str, phone: str, client: str | None = None) -> requests.Response:
    """POST /codes from `client` (X-Forwarded-For), by default from a network of its own."""
    headers = {"X-Forwarded-For": client or new_client()}
    return requests.post(f"{api}/codes", json={"phone": phone}, headers=headers, timeout=10)


def assert_fraud_suspected(answer: requests.Response) -> None:
    assert answer.status_code == 429, answer.text
    body = answer.json()
    assert body["error"] == "fraud_suspected"
    assert 3590 <= body["retry_after"] <= 3600  # PUMPING_BLOCK_SECONDS's default
    assert answer.headers["Retry-After"] == str(body["retry_after"])


def pumping_blocks(api: str, how: str = "auto") -> float:
    """smscode_pumping_blocks_total{how=...} summed over the server's workers."""
    text = requests.get(f"{api}/metrics", auth=ADMIN_KEY, timeout=5).text
    for line in text.splitlines():
        if line.startswith(f'smscode_pumping_blocks_total{{how="{how}"}}'):
            return float(line.split()[-1])
    return 0.0


def test_a_pumped_block_is_refused_after_its_minimum_sends_while_a_healthy_block_works(
    server: Server,
    api: str,
    fake_ronglian: FakeRonglian,
    redis_client: redis.Redis,
) -> None:
    # given: a bot on many networks asks codes for numbers of one block, never verifying
    pumped = block_phones(MIN_SENDS + 5)
    blocks_before = pumping_blocks(api)
    # when
    answers = [send(api, phone) for phone in pumped]
    # then: the first PUMPING_MIN_SENDS go out, every later one is refused as fraud
    assert [a.status_code for a in answers[:MIN_SENDS]] == [202] * MIN_SENDS
    for answer in answers[MIN_SENDS:]:
        assert_fraud_suspected(answer)
    # and a refused send cost nothing: no SMS, and no cap of its phone was counted
    fake_ronglian.wait_for(MIN_SENDS)
    assert {sms.to for sms in fake_ronglian.accepted} == set(pumped[:MIN_SENDS])
    for phone in pumped[MIN_SENDS:]:
        assert not redis_client.exists(f"{{smscode}}:daily:{normalize(phone)}")
        assert not redis_client.exists(f"{{smscode}}:code:{normalize(phone)}")
    # and the automatic block was logged at warning and counted
    assert pumping_blocks(api) == blocks_before + 1
    block = pumped[0][:7]
    [warning] = [
        json.loads(line) for line in server.output().splitlines()
        if f"number block {block} blocked for pumping" in line
    ]  # fmt: skip
    assert warning["level"] == "warning"
    assert "20 sends, 0 verified" in warning["message"]

    # when: real users of another block, past the minimum, each verify their code
    for phone in block_phones(MIN_SENDS + 10):
        send_and_verify(api, phone, fake_ronglian.last_code, {"X-Forwarded-For": new_client()})
    # then: every one of them got through (send_and_verify asserts 202 and 200)
    # and the pumped block stays refused, even for a number it never tried
    assert_fraud_suspected(send(api, block_phones(1, block)[0]))


def test_a_block_whose_users_verify_a_quarter_of_their_codes_is_never_refused(
    api: str, fake_ronglian: FakeRonglian
) -> None:
    # given / when: twice the minimum sends, one in four verified (0.25 >= 0.2)
    for n, phone in enumerate(block_phones(MIN_SENDS * 2)):
        if n % 4 == 0:
            send_and_verify(api, phone, fake_ronglian.last_code, {"X-Forwarded-For": new_client()})
        else:
            # then: every send is accepted (a refusal would be a 429 here)
            assert send(api, phone).status_code == 202


def test_one_network_alone_gets_only_itself_refused_a_block(
    server: Server, api: str, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    # given: 20 unverified sends into one block from one /24 (its hosts rotating)
    phones = block_phones(MIN_SENDS + 2)
    blocks_before = pumping_blocks(api, "network")
    answers = [send(api, phone, f"203.0.113.{n + 1}") for n, phone in enumerate(phones[:MIN_SENDS])]
    assert [a.status_code for a in answers] == [202] * MIN_SENDS
    # when / then: that network is refused the block, as before
    assert_fraud_suspected(send(api, phones[MIN_SENDS], "203.0.113.250"))
    # but a send into that block from another network goes out
    answer = send(api, phones[MIN_SENDS + 1], "198.51.100.7")
    assert answer.status_code == 202, answer.text
    # and the refusal is logged and counted as one network's, and shown so on the dashboard
    block = phones[0][:7]
    assert pumping_blocks(api, "network") == blocks_before + 1
    assert f"number block {block} refused to network 203.0.113.0/24" in server.output()
    stats = requests.get(f"{api}/admin/stats", auth=ADMIN_KEY, timeout=5).json()
    [refusal] = [entry for entry in stats["blocked"] if entry["block"] == block]
    assert (refusal["reason"], refusal["network"]) == ("network", "203.0.113.0/24")
    assert (refusal["sends"], refusal["verified"]) == (MIN_SENDS, 0)
    [row] = [row for row in stats["blocks"] if row["block"] == block]
    assert row["blocked"] is False  # not refused to everyone


def test_an_ipv6_network_is_its_48(api: str, redis_client: redis.Redis) -> None:
    # given: unverified sends from 20 different /64s of one /48
    phones = block_phones(MIN_SENDS + 2)
    for n, phone in enumerate(phones[:MIN_SENDS]):
        assert send(api, phone, f"2001:db8:5:{n:x}::1").status_code == 202
    # then: the /48 is refused the block, another /48 is not
    assert_fraud_suspected(send(api, phones[MIN_SENDS], "2001:db8:5:ffff::9"))
    assert send(api, phones[MIN_SENDS + 1], "2001:db8:6::1").status_code == 202


@pytest.fixture(scope="module")
def strict_server(redis_url: str, fake_ronglian_session: FakeRonglian) -> Iterator[Server]:
    """Three unverified sends block a block; one block and one phone are allow-listed."""
    env = stack_env(
        redis_url,
        fake_ronglian_session,
        DELIVERY_BACKEND="inline",
        TRUSTED_PROXY_COUNT="1",
        PUMPING_MIN_SENDS="3",
        PUMPING_BLOCK_SECONDS="600",
        PUMPING_ALLOW="1990000,+8619900010000",
    )
    server = Server(env).start()
    yield server
    server.stop()


def test_allow_listed_blocks_and_phones_are_never_refused(
    strict_server: Server, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    api = strict_server.url
    # an allow-listed block: any number of unverified sends
    assert {send(api, p).status_code for p in block_phones(6, "1990000")} == {202}
    # an allow-listed phone inside a block that gets blocked
    others = block_phones(4, "1990001")
    assert [send(api, p).status_code for p in others] == [202, 202, 202, 429]
    assert send(api, "19900010000").status_code == 202


def test_an_operator_blocks_and_unblocks_by_hand(
    strict_server: Server, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    api = strict_server.url
    phones = block_phones(5)
    block = phones[0][:7]
    admin = requests.Session()
    admin.auth = ADMIN_KEY
    # without a key: 401, and a browser is asked for one
    for method in ("PUT", "DELETE"):
        answer = requests.request(method, f"{api}/admin/blocks/{block}", timeout=5)
        assert answer.status_code == 401
        assert answer.headers["WWW-Authenticate"].startswith("Basic ")
    # blocked by hand: refused at once, for the given time
    answer = admin.put(f"{api}/admin/blocks/{block}", json={"seconds": 120}, timeout=5)
    assert answer.status_code == 200, answer.text
    assert answer.json()["retry_after"] == 120
    refused = send(api, phones[0])
    assert refused.status_code == 429
    assert refused.json()["error"] == "fraud_suspected"
    assert 110 <= refused.json()["retry_after"] <= 120
    # unblocked: sends go out again, and the old window cannot re-block it at once
    assert admin.delete(f"{api}/admin/blocks/{block}", timeout=5).status_code == 200
    assert [send(api, p).status_code for p in phones[1:4]] == [202, 202, 202]
    # three unverified sends block it automatically; unblocking clears the window too
    assert send(api, phones[4]).status_code == 429
    assert admin.delete(f"{api}/admin/blocks/{block}", timeout=5).status_code == 200
    assert send(api, phones[4]).status_code == 202
    # bad blocks, unknown blocks and allow-listed blocks are clear errors
    assert admin.put(f"{api}/admin/blocks/12345", timeout=5).json()["error"] == "invalid_request"
    assert admin.put(f"{api}/admin/blocks/1990000", timeout=5).status_code == 400
    assert admin.delete(f"{api}/admin/blocks/1770000", timeout=5).status_code == 404
    bad = admin.put(f"{api}/admin/blocks/{block}", json={"seconds": "soon"}, timeout=5)
    assert bad.status_code == 400


def test_admin_stats_need_a_key_and_count_sends_verifications_and_blocks(
    strict_server: Server, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> None:
    api = strict_server.url
    # given: a pumped block (4 sends from as many networks, the 4th refused) and a healthy
    # one (2 verified)
    pumped = block_phones(4)
    for phone in pumped:
        send(api, phone)
    healthy = block_phones(2)
    for phone in healthy:
        send_and_verify(api, phone, fake_ronglian.last_code)
    # when / then: no key, a wrong key: 401
    assert requests.get(f"{api}/admin/stats", timeout=5).status_code == 401
    wrong = requests.get(f"{api}/admin/stats", auth=("ops", "x" * 30), timeout=5)
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "unauthorized"
    # HTTP Basic and Bearer id:secret both work; /admin/ leads to the canonical /admin
    slash = requests.get(f"{api}/admin/", allow_redirects=False, timeout=5)
    assert (slash.status_code, slash.headers["Location"]) == (308, "../admin")
    page = requests.get(f"{api}/admin/", auth=ADMIN_KEY, timeout=5)
    assert page.url == f"{api}/admin"
    assert 'src="assets/admin.js"' in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    bearer = {"Authorization": "Bearer " + ":".join(ADMIN_KEY)}
    assert requests.get(f"{api}/admin/stats", headers=bearer, timeout=5).status_code == 200
    # (inline delivery records each outcome just after the fake answers: wait for all five)
    fake_ronglian.wait_for(5)
    deadline = time.monotonic() + 10
    while True:
        stats = requests.get(f"{api}/admin/stats", auth=ADMIN_KEY, timeout=5).json()
        if stats["delivery"] == {"sent": 5} or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # 24 hours, the current one last, holding this test's traffic
    assert len(stats["hours"]) == 24
    now = stats["hours"][-1]
    assert (now["sends"], now["verified"], now["refused"]) == (5, 2, 1)
    assert now["conversion"] == 0.4
    assert stats["totals"] == {"sends": 5, "verified": 2, "refused": 1}
    # the top blocks with their conversion, the pumped one marked blocked
    blocks = {row["block"]: row for row in stats["blocks"]}
    assert blocks[pumped[0][:7]] == {
        "block": pumped[0][:7], "sends": 3, "verified": 0, "refused": 1,
        "conversion": 0.0, "blocked": True,
    }  # fmt: skip
    assert blocks[healthy[0][:7]]["conversion"] == 1.0
    assert blocks[healthy[0][:7]]["blocked"] is False
    [blocked] = stats["blocked"]
    assert blocked["block"] == pumped[0][:7]
    assert (blocked["reason"], blocked["sends"], blocked["verified"]) == ("auto", 3, 0)
    assert 590 <= blocked["retry_after"] <= 600
    # the provider's outcomes
    assert stats["delivery"] == {"sent": 5}
    assert stats["rule"]["min_sends"] == 3
