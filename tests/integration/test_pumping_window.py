"""The pumping window in the real scripts, on a clock the test moves: it slides, blocks end.

Sends come from many client networks unless a test says otherwise: a block is refused for
everyone only on evidence from several (one network alone gets refused that block alone).
"""

from __future__ import annotations

import itertools

import redis

from smscode.adapters.redis_pumping import RedisPumping
from smscode.adapters.redis_store import RedisStore
from smscode.domain.policy import Limits, Rejection
from smscode.domain.pumping import BlockWatch, PumpingRule, network_of
from smscode.service_layer.ports import Send
from tests.helpers import block_phones

RULE = PumpingRule(min_sends=5, min_conversion=0.5, window_seconds=600, block_seconds=300)
LIMITS = Limits(
    code_ttl=300, resend_interval=0, phone_daily=100, ip_hourly=10**6,
    prefix_hourly=10**6, global_minute=10**6,
)  # fmt: skip


class Clock:
    """Milliseconds since the epoch, moved by the test."""

    def __init__(self) -> None:
        self.ms = 1_800_000_000_000

    def __call__(self) -> int:
        return self.ms


_NETWORKS = itertools.count()


def new_network() -> str:
    """A client address in a /24 no earlier call gave."""
    n = next(_NETWORKS)
    return f"10.{n // 256 % 256}.{n % 256}.7"


def send(phone: str, ip: str | None = None) -> Send:
    e164 = f"+86{phone}"
    return Send(
        phone=e164, masked="x", ip=ip or new_network(), code_hash="h", message_id="m",
        request_id=phone, limits=LIMITS, pumping=BlockWatch.of(e164, RULE), purpose="login",
    )  # fmt: skip


def issue(store: RedisStore, phone: str, ip: str | None = None) -> Rejection | None:
    return store.issue(send(phone, ip))


def verify(store: RedisStore, phone: str) -> str:
    e164 = f"+86{phone}"
    outcome, _ = store.verify(
        phone=e164, candidate_hash="h", max_attempts=5, daily_failures=100,
        pumping=BlockWatch.of(e164, RULE), client="198.51.100.1", client_failures=100,
    )  # fmt: skip
    return outcome


def test_old_sends_slide_out_of_the_window_and_a_block_ends(redis_client: redis.Redis) -> None:
    clock = Clock()
    store = RedisStore(redis_client, clock=clock)
    phones = block_phones(12)
    # given: four unverified sends, then the window slides past them
    assert [issue(store, p) for p in phones[:4]] == [None] * 4
    clock.ms += 601_000
    # then: four more are fine (the old four no longer count), the 5th one in is judged
    assert [issue(store, p) for p in phones[4:9]] == [None] * 5
    refused = issue(store, phones[9])
    assert refused is not None
    assert (refused.reason, refused.retry_after, refused.new_block) == (
        "fraud_suspected",
        300,
        (5, 0),
    )
    # and a second refusal is not a new block
    again = issue(store, phones[10])
    assert again is not None
    assert again.new_block is None
    # when the block ends and the window has slid on, the block sends again
    clock.ms += 601_000
    assert issue(store, phones[10]) is None
    assert RedisPumping(redis_client, clock=clock).blocked() == []


def test_a_slow_pump_is_caught_as_surely_as_a_fast_one(redis_client: redis.Redis) -> None:
    # given: one unverified send every 110 s (the test's clock; Redis expires keys by its own)
    clock = Clock()
    store = RedisStore(redis_client, clock=clock)
    phones = block_phones(6)
    for phone in phones[:5]:
        assert issue(store, phone) is None
        clock.ms += 110_000
    # then: the block's hash outlives the window (600 s), which holds all five: refused
    assert redis_client.pttl(f"{{smscode}}:pump:{phones[0][:7]}") > 600_000
    refused = issue(store, phones[5])
    assert refused is not None
    assert refused.new_block == (5, 0)


def test_sends_sliding_out_one_by_one_leave_the_window(redis_client: redis.Redis) -> None:
    # given: one unverified send every 150 s: a 600 s window never holds five of them
    clock = Clock()
    store = RedisStore(redis_client, clock=clock)
    for phone in block_phones(12):
        # then: never refused, as each send's oldest neighbour slides out
        assert issue(store, phone) is None
        clock.ms += 150_000


def test_verified_codes_keep_a_busy_block_open(redis_client: redis.Redis) -> None:
    store = RedisStore(redis_client, clock=Clock())
    for phone in block_phones(30):
        assert issue(store, phone) is None
        assert verify(store, phone) == "ok"


def test_a_send_that_could_not_be_queued_does_not_count(redis_client: redis.Redis) -> None:
    clock = Clock()
    store = RedisStore(redis_client, clock=clock)
    phones = block_phones(8)
    # given: sends the queue refused, each undone (the publish failure path)
    for phone in phones:
        undone = send(phone)
        assert store.issue(undone) is None
        assert store.unissue(undone)
    # then: none of them counts toward the block, nor in the hour's stats
    assert [issue(store, p) for p in phones[:5]] == [None] * 5
    assert RedisPumping(redis_client, clock=clock).hourly(1)[0]["sends"] == 5


def test_one_network_enters_at_most_its_share_of_a_block_window(
    redis_client: redis.Redis,
) -> None:
    # given: RULE needs 5 sends from 5 networks (one each in the block's window)
    store = RedisStore(redis_client, clock=Clock())
    phones = block_phones(10)
    one = new_network()
    assert [issue(store, p, one) for p in phones[:4]] == [None] * 4
    # then: the block's window holds one of them
    assert redis_client.hget(f"{{smscode}}:pump:{phones[0][:7]}", "S") == "1"
    # when four more networks send once each
    assert [issue(store, p) for p in phones[4:8]] == [None] * 4
    # then: five networks' unverified sends refuse the block to everyone
    refused = issue(store, phones[8])
    assert refused is not None
    assert (refused.reason, refused.new_block, refused.network) == ("fraud_suspected", (5, 0), None)


def test_a_network_refused_alone_sends_again_when_its_refusal_ends(
    redis_client: redis.Redis,
) -> None:
    clock = Clock()
    store = RedisStore(redis_client, clock=clock)
    pumping = RedisPumping(redis_client, clock=clock)
    phones = block_phones(9)
    block, one = phones[0][:7], new_network()
    # given: five unverified sends from one network
    assert [issue(store, p, one) for p in phones[:5]] == [None] * 5
    # then: that network is refused the block, for RULE.block_seconds
    refused = issue(store, phones[5], one)
    assert refused is not None
    assert (refused.retry_after, refused.new_block) == (300, (5, 0))
    assert refused.network == network_of(one)
    assert issue(store, phones[5]) is None  # another network is not
    [entry] = pumping.blocked()
    assert (entry.block, entry.reason, entry.network) == (block, "network", network_of(one))
    # when the refusal ends and the window has slid past those sends, it sends again
    clock.ms += 1_300_000
    assert issue(store, phones[6], one) is None
    assert pumping.blocked() == []
    assert redis_client.hkeys("{smscode}:pump:why") == []  # its reason left with it


def test_an_operator_unblock_lifts_a_network_refusal_and_forgets_its_counts(
    redis_client: redis.Redis,
) -> None:
    clock = Clock()
    store = RedisStore(redis_client, clock=clock)
    pumping = RedisPumping(redis_client, clock=clock)
    phones = block_phones(8)
    one = new_network()
    assert [issue(store, p, one) for p in phones[:5]] == [None] * 5
    assert issue(store, phones[5], one) is not None
    # when
    assert pumping.unblock(phones[0][:7], RULE.window_seconds)
    # then: the network sends again, its old sends forgotten
    assert issue(store, phones[5], one) is None
    assert issue(store, phones[6], one) is None
    assert not pumping.unblock(phones[0][:7], RULE.window_seconds)
