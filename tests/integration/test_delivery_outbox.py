"""The outbox over the real Redis: overdue messages handed out once per period, final ones leave."""

from __future__ import annotations

import time

import redis

from smscode.adapters import keys
from smscode.adapters.redis_client import connect
from smscode.adapters.redis_store import RedisStore
from tests.helpers import delivery_message

RECHECK = 5_000
PROVIDERS = ("ronglian",)  # what the sweeper's workers list


class Clock:
    """A settable millisecond clock for the store."""

    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


def test_an_overdue_message_is_handed_out_once_per_period(
    redis_client: redis.Redis, redis_url: str
) -> None:
    clock = Clock()
    store = RedisStore(connect(redis_url), clock=clock)
    store.hold("m1", '{"payload": 1}', RECHECK)
    assert store.sweep(RECHECK, PROVIDERS) == []  # not due yet
    clock.now += RECHECK
    assert store.sweep(RECHECK, PROVIDERS) == ['{"payload": 1}']
    assert store.sweep(RECHECK, PROVIDERS) == []  # another sweeper, same period: nothing
    clock.now += RECHECK
    assert store.sweep(RECHECK, PROVIDERS) == ['{"payload": 1}']


def test_a_final_state_or_a_release_takes_the_message_out(
    redis_client: redis.Redis, redis_url: str
) -> None:
    clock = Clock()
    store = RedisStore(connect(redis_url), clock=clock)
    for mid in ("sent", "retry", "released"):
        store.hold(mid, mid, RECHECK)
    store.finish(request_id="r1", message_id="sent", state="sent", masked="+86138****8000")
    store.finish(request_id="r2", message_id="retry", state=None, recheck_ms=3 * RECHECK)
    store.release("released")
    clock.now += RECHECK
    assert store.sweep(RECHECK, PROVIDERS) == []  # sent and released gone, the retry not due
    assert redis_client.hkeys(keys.outbox_messages()) == ["retry"]
    clock.now += 2 * RECHECK
    assert store.sweep(RECHECK, PROVIDERS) == ["retry"]


def test_a_claim_that_finds_the_message_final_or_stale_takes_it_out(
    redis_client: redis.Redis, redis_url: str
) -> None:
    store = RedisStore(connect(redis_url), clock=Clock())
    store.hold("m1", "payload", RECHECK)
    # no code carries this message id any more (verified, replaced or expired)
    result = store.claim(
        phone="+8613800138000",
        request_id="r1",
        message_id="m1",
        token="t",
        lease_ms=1000,
        providers=PROVIDERS,
        pin_to=None,
        pin_ttl=60,
    )
    assert result == "skipped"
    assert redis_client.zcard(keys.outbox()) == 0
    assert redis_client.hlen(keys.outbox_messages()) == 0


def test_a_message_pinned_to_a_provider_the_workers_do_not_list_is_left_for_others(
    redis_client: redis.Redis, redis_url: str
) -> None:
    # given two overdue messages, one pinned to Aliyun after an ambiguous answer there
    clock = Clock()
    store = RedisStore(connect(redis_url), clock=clock)
    for mid in ("free", "at-aliyun"):
        store.hold(mid, mid, RECHECK)
    redis_client.set(keys.pin("at-aliyun"), f"aliyun:{clock.now}")
    clock.now += RECHECK
    # when the sweeper of workers listing Ronglian alone looks, it takes only the other one
    assert store.sweep(RECHECK, PROVIDERS) == ["free"]
    # and the pinned one is still due for a sweeper whose workers list Aliyun
    assert store.sweep(RECHECK, ("ronglian", "aliyun")) == ["at-aliyun"]


def test_messages_pinned_elsewhere_at_the_head_of_the_outbox_do_not_hide_the_rest(
    redis_client: redis.Redis, redis_url: str
) -> None:
    # given 100 overdue messages pinned to Aliyun (another deployment's, or listed here no
    # more), the oldest, and behind them one overdue message this sweeper's workers can send
    clock = Clock()
    store = RedisStore(connect(redis_url), clock=clock)
    for n in range(100):
        store.hold(f"elsewhere-{n}", f"elsewhere-{n}", RECHECK)
        redis_client.set(keys.pin(f"elsewhere-{n}"), f"aliyun:{clock.now}")
    clock.now += 1
    store.hold("ours", "ours", RECHECK)
    clock.now += RECHECK
    # when the sweeper of workers listing Ronglian alone looks
    # then it hands out the one it can send, and leaves the others due for their own sweeper
    assert store.sweep(RECHECK, PROVIDERS) == ["ours"]
    assert sorted(store.sweep(RECHECK, ("aliyun",))) == sorted(f"elsewhere-{n}" for n in range(100))


def test_a_message_left_for_others_is_dropped_once_its_code_has_expired(
    redis_client: redis.Redis, redis_url: str
) -> None:
    clock = Clock()
    store = RedisStore(connect(redis_url), clock=clock)
    live, gone = delivery_message(), delivery_message()
    gone = gone.model_copy(update={"expires_at": gone.created_at})
    for message in (live, gone):
        store.hold(message.message_id, message.to_json(), RECHECK)
        redis_client.set(keys.pin(message.message_id), f"aliyun:{clock.now}")
    clock.now = int(time.time() * 1000)
    assert store.sweep(RECHECK, PROVIDERS) == []
    assert redis_client.hkeys(keys.outbox_messages()) == [live.message_id]


def test_a_worker_whose_lease_lapsed_cannot_end_a_message_another_worker_is_sending(
    redis_client: redis.Redis, redis_url: str
) -> None:
    # given worker A's lease lapsed and worker B holds the message now
    store = RedisStore(connect(redis_url), clock=Clock())
    store.hold("m1", "payload", RECHECK)
    redis_client.set(keys.lease("m1"), "b", px=30_000)
    redis_client.set(keys.pin("m1"), "ronglian:1")
    # when A, refused for good at last, records the failure
    assert store.finish(request_id="r1", message_id="m1", state="failed", token="a") is None
    # then nothing changes: B's attempt decides
    assert store.request_state("r1") == {}
    assert redis_client.get(keys.pin("m1")) == "ronglian:1"
    assert redis_client.hkeys(keys.outbox_messages()) == ["m1"]
    assert redis_client.get(keys.lease("m1")) == "b"
    # but a 'sent' is a fact, recorded whoever learns it
    store.finish(request_id="r1", message_id="m1", state="sent", token="a", masked="+86138****8000")
    assert store.request_state("r1")["state"] == "sent"
    assert redis_client.hkeys(keys.outbox_messages()) == []
