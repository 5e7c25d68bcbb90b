"""The use cases over in-memory fakes of their ports: no server, no socket, a settable clock."""

from __future__ import annotations

import pytest

from smscode.domain.messages import DeliveryMessage
from smscode.domain.policy import Limits, Policy
from smscode.domain.sealing import Sealer
from smscode.service_layer.deliver import Deliverer
from smscode.service_layer.send import Sender
from smscode.service_layer.verify import Verifier
from tests.fakes.ports import Clock, FakeMetrics, FakeProvider, FakePublisher, FakeStore

SECRET = b"unit-secret-0123456789abcdefghij"
TTL = 300
RESEND = 60
LIMITS = Limits(
    code_ttl=TTL, resend_interval=RESEND, phone_daily=3, ip_hourly=1000, prefix_hourly=1000,
    global_minute=1000,
)  # fmt: skip
POLICY = Policy(code_length=6, limits=LIMITS, max_verify_attempts=3, verify_failures_daily=5)
PHONE = "13800138000"
E164 = "+8613800138000"


class World:
    """One set of fakes and the three use cases over them."""

    def __init__(self, policy: Policy = POLICY) -> None:
        self.clock = Clock()
        self.store = FakeStore(clock=self.clock)
        self.publisher = FakePublisher()
        self.provider = FakeProvider()
        self.metrics = FakeMetrics()
        self.sealer = Sealer(SECRET)
        self.sender = Sender(
            policy, self.store, self.publisher, self.sealer, SECRET, self.metrics, self.clock
        )
        self.verifier = Verifier(policy, self.store, SECRET, self.metrics)
        self.deliverer = Deliverer(
            self.store, self.provider, self.sealer, self.metrics,
            lease_seconds=2, budget_seconds=1, providers=("fake",), pin_at_claim=True,
            clock=self.clock,
        )  # fmt: skip

    def queued(self, phone: str = PHONE) -> DeliveryMessage:
        """Issue a code to `phone` and return the one message it queued."""
        before = len(self.publisher.messages)
        self.sender.issue(phone, "127.0.0.1")
        [message] = self.publisher.messages[before:]
        return message

    def code_of(self, message: DeliveryMessage) -> str:
        """The code a message carries, opened as the deliverer would."""
        return self.sealer.open(message.sealed_code, message.message_id)


@pytest.fixture
def world() -> World:
    """Fresh fakes for each test."""
    return World()
