"""The outbox over the real Redis: overdue messages handed out once per period, final ones leave."""

from __future__ import annotations

import redis

from smscode.adapters import keys
from smscode.adapters.redis_client import connect
from smscode.adapters.redis_store import RedisStore

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
