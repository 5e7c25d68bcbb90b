"""The pumping rule's pure parts: number blocks, PUMPING_ALLOW, the operator's checks."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from smscode.domain.errors import FraudSuspected, InvalidRequest, NotFound
from smscode.domain.pumping import BlockedBlock, BlockWatch, PumpingRule, block_of
from smscode.service_layer.pumping import Operator
from smscode.settings import Settings, SettingsError, load_settings
from tests.fakes.ports import FakeMetrics
from tests.unit.conftest import POLICY, World

BASE = {"REDIS_URL": "redis://127.0.0.1:1/0", "CODE_SECRET": "s3cret-code-key-0123456789abcdef"}


@pytest.mark.parametrize(
    ("phone", "block"),
    [("+8613800138000", "1380013"), ("+8619912345678", "1991234"), ("+447911123456", "+44"),
     ("+12025550123", "+1"), ("+85291234567", "+852")],
)  # fmt: skip
def test_a_mainland_block_is_seven_digits_and_abroad_the_country_code(
    phone: str, block: str
) -> None:
    assert block_of(phone) == block


def test_the_default_window_is_summed_from_sixty_minute_buckets() -> None:
    rule = PumpingRule()
    assert (rule.min_sends, rule.min_conversion) == (20, 0.2)
    assert (rule.bucket_seconds, rule.buckets) == (60, 60)
    assert PumpingRule(window_seconds=90).buckets == 90


def test_allow_listed_phones_and_blocks_are_exempt() -> None:
    rule = PumpingRule(allow=frozenset({"1380013", "+8613900139000"}))
    assert BlockWatch.of("+8613800131234", rule).exempt
    assert BlockWatch.of("+8613900139000", rule).exempt
    assert not BlockWatch.of("+8613900139001", rule).exempt


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in {**BASE, **env}.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_pumping_allow_takes_blocks_and_phones(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = settings(monkeypatch, PUMPING_ALLOW="1380013, +44,13900139000")
    assert loaded.pumping_allow == {"1380013", "+44", "+8613900139000"}


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PUMPING_ALLOW", "138001"),
        ("PUMPING_MIN_CONVERSION", "1.5"),
        ("PUMPING_MIN_SENDS", "0"),
        ("PUMPING_MIN_NETWORKS", "0"),
        ("VERIFY_IP_HOURLY_LIMIT", "0"),
    ],
)
def test_bad_pumping_settings_stop_with_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    with pytest.raises(SettingsError, match=f"^{name} is invalid"):
        settings(monkeypatch, **{name: value})


class FakeStore:
    """The PumpingStore port in memory."""

    def __init__(self) -> None:
        self.blocks: dict[str, tuple[int, str]] = {}

    def block(self, block: str, seconds: int, reason: str) -> None:
        self.blocks[block] = (seconds, reason)

    def unblock(self, block: str, window_seconds: int) -> bool:
        return self.blocks.pop(block, None) is not None

    def blocked(self) -> list[BlockedBlock]:
        return [BlockedBlock(block, 10_000 + 1000 * s, r) for block, (s, r) in self.blocks.items()]

    def hourly(self, hours: int) -> list[dict[str, Any]]:
        return [
            {"hour": 100 + n, "sends": n, "verified": n // 2, "refused": 0, "delivery": {"sent": n}}
            for n in range(hours)
        ]

    def top_blocks(self, hours: int, limit: int) -> list[dict[str, Any]]:
        return [{"block": "1380013", "sends": 4, "verified": 1, "refused": 2}]


def operator(store: FakeStore) -> Operator:
    rule = PumpingRule(allow=frozenset({"1990000"}))
    return Operator(rule, store, FakeMetrics(), clock=lambda: 10.0)


def test_the_operator_blocks_real_blocks_only() -> None:
    store = FakeStore()
    assert operator(store).block("1380013", "ops")["retry_after"] == 3600
    assert store.blocks == {"1380013": (3600, "manual:ops")}
    for bad in ("138001", "2380013", "+0", "+1234", "1990000"):
        with pytest.raises(InvalidRequest):
            operator(store).block(bad, "ops")
    operator(store).unblock("1380013", "ops")
    with pytest.raises(NotFound):
        operator(store).unblock("1380013", "ops")


def test_stats_add_conversion_totals_and_which_top_blocks_are_blocked() -> None:
    store = FakeStore()
    store.block("1380013", 60, "manual:ops")
    stats = operator(store).stats()
    assert len(stats["hours"]) == 24
    assert stats["hours"][0]["conversion"] is None  # no sends that hour
    assert stats["hours"][4] | {"hour": ""} == {
        "hour": "", "sends": 4, "verified": 2, "refused": 0, "conversion": 0.5,
        "delivery": {"sent": 4},
    }  # fmt: skip
    assert stats["hours"][1]["hour"] == "1970-01-05T05:00:00Z"
    assert stats["blocks"] == [
        {"block": "1380013", "sends": 4, "verified": 1, "refused": 2, "conversion": 0.25,
         "blocked": True},
    ]  # fmt: skip
    assert stats["blocked"][0]["retry_after"] == 60
    assert stats["delivery"] == {"sent": sum(range(24))}


def test_the_sender_refuses_a_pumped_block_and_counts_its_automatic_block() -> None:
    # given: unverified sends into one block from three networks (the rule's minimum)
    world = World(replace(POLICY, pumping=PumpingRule(min_sends=3, min_networks=3)))
    for n, phone in enumerate(("13800130001", "13800130002", "13800130003")):
        world.sender.issue(phone, f"203.0.{n}.1")
    # then: the block is refused to every network
    for n, phone in enumerate(("13800130004", "13800130005")):
        with pytest.raises(FraudSuspected) as refused:
            world.sender.issue(phone, f"198.51.{n}.1")
        assert refused.value.retry_after == 3600
        assert refused.value.body()["error"] == "fraud_suspected"
    assert len(world.publisher.messages) == 3  # a refused send queues nothing
    assert world.metrics.counts["pumping_blocked", "auto"] == 1
    assert world.metrics.counts["send_rejected", "fraud_suspected"] == 2


def test_one_network_alone_gets_only_itself_refused_the_block() -> None:
    world = World(replace(POLICY, pumping=PumpingRule(min_sends=3)))
    for phone in ("13800130001", "13800130002", "13800130003"):
        world.sender.issue(phone, "203.0.113.1")
    with pytest.raises(FraudSuspected):
        world.sender.issue("13800130004", "203.0.113.200")  # the same /24
    assert world.metrics.counts["pumping_blocked", "network"] == 1
    assert world.metrics.counts["pumping_blocked", "auto"] == 0
    world.sender.issue("13800130005", "198.51.100.1")  # any other network still sends


def test_the_sender_keeps_a_verifying_block_open() -> None:
    world = World(replace(POLICY, pumping=PumpingRule(min_sends=3)))
    for n in range(10):
        message = world.queued(f"1380013{n:04d}")
        world.verifier.verify(f"1380013{n:04d}", world.code_of(message))
    assert world.metrics.counts["pumping_blocked", "auto"] == 0
