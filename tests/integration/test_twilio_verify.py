"""Twilio's own Python client against the real server, with only its base URL changed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import pytest
import redis
import requests
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client
from twilio.rest.verify.v2.service import ServiceContext

from tests.conftest import stack_env
from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server, fresh_phone

KEY_ID = "twilio-app"
SECRET = "twilio-secret-0123456789abcdef"
SERVICE = "VA" + "0123456789abcdef" * 2
OTHER_SERVICE = "VA" + "fedcba9876543210" * 2
# Per-number caps below Twilio's 5 sends would hide 60203; the address cap counts DeviceIp.
PHONE_SENDS = 5
DEVICE_SENDS = 6


@pytest.fixture(scope="module")
def server(redis_url: str, fake_ronglian_session: FakeRonglian) -> Iterator[Server]:
    """The HTTP function with an API key and one Verify service, delivering inline."""
    env = stack_env(
        redis_url,
        fake_ronglian_session,
        DELIVERY_BACKEND="inline",
        API_KEYS=f"{KEY_ID}:{SECRET}",
        VERIFY_SERVICE_SIDS=SERVICE,
        RESEND_INTERVAL_SECONDS="0",
        PHONE_DAILY_LIMIT=str(PHONE_SENDS),
        IP_HOURLY_LIMIT=str(DEVICE_SENDS),
    )
    server = Server(env).start()
    yield server
    server.stop()


def twilio(server: Server, secret: str = SECRET, service: str = SERVICE) -> ServiceContext:
    """A Verify service on Twilio's client: the base URL is the only change."""
    client = Client(KEY_ID, secret)
    client.verify.base_url = server.url
    return client.verify.v2.services(service)


@pytest.fixture
def verify(
    server: Server, redis_client: redis.Redis, fake_ronglian: FakeRonglian
) -> ServiceContext:
    """The service on a clean Redis: the caps count 127.0.0.1's native sends of other tests."""
    return twilio(server)


def code_for(fake: FakeRonglian, to: str, sends: int = 1) -> str:
    """The code in the `sends`-th SMS to the number (inline delivery runs beside the request)."""
    national = to.removeprefix("+86")
    deadline = time.monotonic() + 10
    while len(fake.sms_to(national)) < sends:
        assert time.monotonic() < deadline, f"no SMS {sends} reached {to}"
        time.sleep(0.02)
    return fake.sms_to(national)[sends - 1].datas[0]


def wrong(code: str) -> str:
    return str((int(code) + 1) % 10 ** len(code)).zfill(len(code))


def error(call: object) -> TwilioRestException:
    with pytest.raises(TwilioRestException) as raised:
        call()  # type: ignore[operator]
    return raised.value


def test_whole_flow_create_fetch_check_wrong_then_right(
    server: Server, verify: ServiceContext, fake_ronglian: FakeRonglian
) -> None:
    # given
    to = f"+86{fresh_phone()}"
    # when
    created = verify.verifications.create_with_http_info(to=to, channel="sms")
    # then
    assert created.status_code == 201
    verification = created.data
    assert verification.sid.startswith("VE")
    assert len(verification.sid) == 34
    assert verification.service_sid == SERVICE
    assert verification.account_sid.startswith("AC")
    assert len(verification.account_sid) == 34
    assert (verification.to, verification.channel) == (to, "sms")
    assert (verification.status, verification.valid) == ("pending", False)
    assert isinstance(verification.date_created, datetime)  # the client parsed Twilio's format
    assert isinstance(verification.date_updated, datetime)
    assert verification.lookup == {}
    assert (verification.amount, verification.payee, verification.sna) == (None, None, None)
    [attempt] = verification.send_code_attempts
    assert attempt["channel"] == "sms"
    assert attempt["attempt_sid"].startswith("VL")
    assert attempt["time"].endswith("Z")
    assert verification.url == (
        f"{server.url}/v2/Services/{SERVICE}/Verifications/{verification.sid}"
    )
    fetched = verify.verifications(verification.sid).fetch()
    assert (fetched.sid, fetched.status) == (verification.sid, "pending")
    code = code_for(fake_ronglian, to)
    miss = verify.verification_checks.create(to=to, code=wrong(code))
    assert (miss.sid, miss.status, miss.valid) == (verification.sid, "pending", False)
    hit = verify.verification_checks.create(verification_sid=verification.sid, code=code)
    assert (hit.sid, hit.status, hit.valid) == (verification.sid, "approved", True)
    assert isinstance(hit.date_updated, datetime)
    # approved verifications are gone, as on Twilio
    again = error(lambda: verify.verification_checks.create(to=to, code=code))
    assert (again.status, again.code) == (404, 20404)
    gone = error(lambda: verify.verifications(verification.sid).fetch())
    assert (gone.status, gone.code) == (404, 20404)


def test_cancel_ends_the_verification_and_its_code(
    server: Server, verify: ServiceContext, fake_ronglian: FakeRonglian
) -> None:
    # given
    to = f"+86{fresh_phone()}"
    verification = verify.verifications.create(to=to, channel="sms")
    code = code_for(fake_ronglian, to)
    # when
    canceled = verify.verifications(verification.sid).update(status="canceled")
    # then
    assert (canceled.sid, canceled.status, canceled.valid) == (verification.sid, "canceled", False)
    raised = error(lambda: verify.verification_checks.create(to=to, code=code))
    assert (raised.status, raised.code) == (404, 20404)
    native = requests.post(
        f"{server.url}/codes/verify", data={"phone": to, "code": code}, timeout=5
    )
    assert native.json()["error"] == "no_active_code"


def test_approve_by_hand(verify: ServiceContext) -> None:
    verification = verify.verifications.create(to=f"+86{fresh_phone()}", channel="sms")
    approved = verify.verifications(verification.sid).update(status="approved")
    assert (approved.status, approved.valid) == ("approved", True)
    raised = error(lambda: verify.verifications(verification.sid).update(status="canceled"))
    assert (raised.status, raised.code) == (404, 20404)


def test_wrong_secret_is_20003(server: Server) -> None:
    verify = twilio(server, secret="not-the-secret-0123456789abc")
    raised = error(lambda: verify.verifications.create(to=f"+86{fresh_phone()}", channel="sms"))
    assert (raised.status, raised.code) == (401, 20003)
    assert "Unable to create record" in raised.msg


def test_unknown_service_is_20404(server: Server) -> None:
    verify = twilio(server, service=OTHER_SERVICE)
    raised = error(lambda: verify.verifications.create(to=f"+86{fresh_phone()}", channel="sms"))
    assert (raised.status, raised.code) == (404, 20404)
    assert raised.uri == f"/Services/{OTHER_SERVICE}/Verifications"


def test_sixth_check_is_max_check_attempts_60202(
    verify: ServiceContext, fake_ronglian: FakeRonglian
) -> None:
    # given
    to = f"+86{fresh_phone()}"
    verification = verify.verifications.create(to=to, channel="sms")
    code = code_for(fake_ronglian, to)
    # when
    answers = [verify.verification_checks.create(to=to, code=wrong(code)).status for _ in range(5)]
    # then
    assert answers == ["pending"] * 4 + ["max_attempts_reached"]
    for attempt in (wrong(code), code):  # even the right code no longer works
        raised = error(
            lambda attempt=attempt: verify.verification_checks.create(
                verification_sid=verification.sid, code=attempt
            )
        )
        assert (raised.status, raised.code) == (429, 60202)


def test_sixth_send_is_max_send_attempts_60203(
    verify: ServiceContext, fake_ronglian: FakeRonglian
) -> None:
    # given
    to = f"+86{fresh_phone()}"
    sent = []
    for sends in range(1, PHONE_SENDS + 1):
        sent.append(verify.verifications.create(to=to, channel="sms"))
        latest = code_for(fake_ronglian, to, sends)  # a code replaced before delivery is not sent
    # when
    raised = error(lambda: verify.verifications.create(to=to, channel="sms"))
    # then
    assert (raised.status, raised.code) == (429, 60203)
    assert {verification.sid for verification in sent} == {sent[0].sid}  # one verification
    assert len(sent[-1].send_code_attempts) == PHONE_SENDS
    # each send is a fresh code that replaces the last; the latest one verifies
    assert verify.verification_checks.create(to=to, code=latest).status == "approved"


def test_too_many_sends_from_one_device_ip_is_20429(verify: ServiceContext) -> None:
    for _ in range(DEVICE_SENDS):
        verify.verifications.create(
            to=f"+86{fresh_phone()}", channel="sms", device_ip="203.0.113.7"
        )
    raised = error(
        lambda: verify.verifications.create(
            to=f"+86{fresh_phone()}", channel="sms", device_ip="203.0.113.7"
        )
    )
    assert (raised.status, raised.code) == (429, 20429)


@pytest.mark.parametrize(
    ("to", "channel"),
    [
        pytest.param("+8613800138000", "call", id="call channel"),
        pytest.param("+8613800138000", "whatsapp", id="whatsapp channel"),
        pytest.param("+15017122661", "sms", id="number outside mainland China"),
    ],
)
def test_invalid_parameter_is_60200(verify: ServiceContext, to: str, channel: str) -> None:
    raised = error(lambda: verify.verifications.create(to=to, channel=channel))
    assert (raised.status, raised.code) == (400, 60200)


def test_native_and_twilio_codes_never_cross(
    server: Server, verify: ServiceContext, fake_ronglian: FakeRonglian
) -> None:
    # given: a native code for the number
    phone = fresh_phone()
    to = f"+86{phone}"
    assert requests.post(f"{server.url}/codes", data={"phone": phone}, timeout=5).ok
    native = code_for(fake_ronglian, to)
    # when / then: the Twilio API has nothing to check the native code against
    raised = error(lambda: verify.verification_checks.create(to=to, code=native))
    assert (raised.status, raised.code) == (404, 20404)
    verification = verify.verifications.create(to=to, channel="sms")
    ours = code_for(fake_ronglian, to, sends=2)
    # nor can the native API check the Twilio code, whatever purpose it names
    for fields, refusal in (({}, "invalid_code"), ({"purpose": "twilio"}, "invalid_request")):
        answer = requests.post(
            f"{server.url}/codes/verify", data={"phone": phone, "code": ours, **fields}, timeout=5
        )
        assert (answer.status_code, answer.json()["error"]) == (400, refusal)
    # and each code still verifies on its own API
    checked = verify.verification_checks.create(verification_sid=verification.sid, code=ours)
    assert checked.status == "approved"
    answer = requests.post(
        f"{server.url}/codes/verify", data={"phone": phone, "code": native}, timeout=5
    )
    assert answer.json() == {"status": "success"}


def test_approvals_count_as_verified_for_the_pumping_rule(
    verify: ServiceContext, fake_ronglian: FakeRonglian
) -> None:
    # given 25 numbers of one block, each verified through the Twilio API: past the pumping
    # rule's 20 sends, where a block with no verified code would be refused
    block = fresh_phone()[:7]
    for i in range(25):
        to = f"+86{block}{i:04d}"
        # when each is sent a code and checked with it
        verify.verifications.create(to=to, channel="sms")
        # then none is refused as pumping, and each approval counts for the block
        assert verify.verification_checks.create(to=to, code=code_for(fake_ronglian, to)).valid
