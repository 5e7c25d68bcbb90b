"""Fuzz the running HTTP function from openapi.yaml with schemathesis: no 5xx, all as specified."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.core.transport import Response
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fakes.ronglian import FakeRonglian
from tests.helpers import Server

SPEC = Path(__file__).resolve().parents[2] / "shared" / "smscode" / "openapi.yaml"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Operations with inputs get this many cases per generation mode; the others have one case.
EXAMPLES_PER_MODE = 150
MINIMUM_CASES = 1000
# The Twilio Verify routes need an API key and a service; every request carries the key.
KEY_ID, SECRET = "fuzz", "fuzz-secret-0123456789abcdef"
SERVICE = "VA" + "5" * 32
# The module's own server (tests/conftest.py), delivering in-process through the fake Ronglian.
SERVER_ENV = {
    "DELIVERY_BACKEND": "inline",
    "API_KEYS": f"{KEY_ID}:{SECRET}",
    "VERIFY_SERVICE_SIDS": SERVICE,
}
HYPOTHESIS = settings(
    max_examples=EXAMPLES_PER_MODE,
    deadline=None,  # every case is a real HTTP round trip
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_path(SPEC)


@pytest.mark.slow
@pytest.mark.timeout(600)  # ~300 real HTTP round trips per operation outgrow the 120 s default
def test_generated_requests_get_specified_answers(
    server: Server, schema: schemathesis.BaseSchema
) -> None:
    # given
    session = requests.Session()
    session.auth = (KEY_ID, SECRET)
    cases: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    # when
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        has_inputs = bool(list(operation.iter_parameters())) or bool(list(operation.body))
        # Negative cases break the schema on purpose: an operation without inputs has none.
        modes = list(GenerationMode) if has_inputs else [GenerationMode.POSITIVE]
        for mode in modes:

            @given(case=operation.as_strategy(generation_mode=mode))
            @HYPOTHESIS
            def run(case: schemathesis.Case[Any]) -> None:
                response = case.call_and_validate(
                    base_url=server.url, session=session, checks=CHECKS, timeout=10
                )
                cases[case.operation.label] += 1
                statuses[response.status_code] += 1

            run()
    # then
    print(f"schemathesis cases: {sum(cases.values())} {dict(cases)} statuses {dict(statuses)}")
    assert sum(cases.values()) >= MINIMUM_CASES, cases
    assert max(statuses) < 500


def _phone() -> str:
    """A fresh number: hypothesis seeds `random` per example, so draw from the OS instead."""
    return f"138{secrets.randbelow(10**8):08d}"


def _code(fake: FakeRonglian, phone: str) -> str:
    """The code the fake received for the phone (inline delivery runs beside the request)."""
    for _ in range(200):
        code = fake.last_code(phone)
        if code is not None:
            return code
        time.sleep(0.05)
    raise AssertionError(f"no SMS reached {phone}")


@pytest.mark.slow
def test_every_documented_outcome_conforms(
    server: Server,
    schema: schemathesis.BaseSchema,
    fake_ronglian: FakeRonglian,
    redis_client: redis.Redis,  # empty: the fuzz above may have blocked number blocks by hand
) -> None:
    """Random fuzzing rarely finds a valid phone; walk each documented success and error."""
    session = requests.Session()
    issue, check = schema["/codes"]["POST"], schema["/codes/verify"]["POST"]
    state = schema["/codes/{request_id}"]["GET"]
    statuses: Counter[tuple[str, int]] = Counter()

    def call(case: schemathesis.Case[Any]) -> Response:
        response = case.call_and_validate(
            base_url=server.url, session=session, checks=CHECKS, timeout=10
        )
        statuses[(case.operation.label, response.status_code)] += 1
        return response

    @given(form=st.booleans(), field=st.sampled_from(["phone", "mobile"]))
    @settings(HYPOTHESIS, max_examples=20)
    def walk(form: bool, field: str) -> None:
        phone = _phone()
        kind = "application/x-www-form-urlencoded" if form else "application/json"
        accepted = call(issue.Case(body={field: phone}, media_type=kind))
        call(issue.Case(body={field: f"+86{phone}"}, media_type=kind))  # 429, Retry-After
        assert accepted.status_code == 202, accepted.text
        call(state.Case(path_parameters={"request_id": accepted.json()["request_id"]}))
        code = _code(fake_ronglian, phone)
        wrong = str((int(code) + 1) % 10**6).zfill(6)
        call(check.Case(body={field: phone, "code": wrong}, media_type=kind))  # 400 invalid_code
        call(check.Case(body={field: phone, "code": code}, media_type=kind))  # 200
        call(check.Case(body={field: phone, "code": code}, media_type=kind))  # 400 no_active_code
        other = _phone()
        call(issue.Case(body={field: other}, media_type=kind))
        for _ in range(5):  # 4 x 400 invalid_code, then 429 too_many_attempts
            call(check.Case(body={field: other, "code": "1" * 7}, media_type=kind))

    walk()
    call(issue.Case(body={"phone": "1" * 5000}, media_type="application/json"))  # 413
    seen = {status for _, status in statuses}
    assert {200, 202, 400, 413, 429} <= seen, statuses


@pytest.mark.slow
def test_every_twilio_outcome_conforms(
    server: Server, schema: schemathesis.BaseSchema, fake_ronglian: FakeRonglian
) -> None:
    """Walk the Twilio Verify routes through each documented answer."""
    session = requests.Session()
    session.auth = (KEY_ID, SECRET)
    base = "/v2/Services/{ServiceSid}"
    create = schema[f"{base}/Verifications"]["POST"]
    fetch, update = (schema[f"{base}/Verifications/{{Sid}}"][m] for m in ("GET", "POST"))
    check = schema[f"{base}/VerificationCheck"]["POST"]
    form = "application/x-www-form-urlencoded"
    statuses: Counter[int] = Counter()

    def call(
        operation: schemathesis.APIOperation[Any, Any, Any, Any],
        body: dict[str, str] | None = None,
        **path: str,
    ) -> Response:
        form_body: dict[str, Any] = {"body": body, "media_type": form} if body is not None else {}
        case = operation.Case(path_parameters={"ServiceSid": SERVICE, **path}, **form_body)
        response = case.call_and_validate(
            base_url=server.url, session=session, checks=CHECKS, timeout=10
        )
        statuses[response.status_code] += 1
        return response

    phone = _phone()
    to = f"+86{phone}"
    created = call(create, {"To": to, "Channel": "sms", "Locale": "en"})
    assert created.status_code == 201, created.text
    sid = created.json()["sid"]
    call(create, {"To": to, "Channel": "sms"})  # 429 60203: resend interval
    call(create, {"To": to, "Channel": "call"})  # 400 60200
    call(fetch, Sid=sid)
    code = _code(fake_ronglian, phone)
    call(check, {"To": to, "Code": "1" * 7})  # 200 pending
    call(check, {"VerificationSid": sid, "Code": code})  # 200 approved
    call(check, {"VerificationSid": sid, "Code": code})  # 404 20404
    call(update, {"Status": "canceled"}, Sid=sid)  # 404: already approved
    other = f"+86{_phone()}"
    other_sid = call(create, {"To": other, "Channel": "sms"}).json()["sid"]
    call(update, {"Status": "paused"}, Sid=other_sid)  # 400 60200
    for _ in range(6):  # 4 x pending, max_attempts_reached, then 429 60202
        call(check, {"To": other, "Code": "0" * 9})
    approved = call(create, {"To": f"+86{_phone()}", "Channel": "sms"}).json()["sid"]
    call(update, {"Status": "approved"}, Sid=approved)
    session.auth = (KEY_ID, "not-the-secret-0123456789ab")
    call(fetch, Sid=sid)  # 401 20003
    assert {200, 201, 400, 401, 404, 429} <= set(statuses), statuses
