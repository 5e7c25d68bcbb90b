"""Twilio Verify v2 on our HTTP API: its routes, form fields, JSON resources and error shape.

Twilio's own client libraries work against these routes with only their base URL changed
(docs/concepts/twilio-verify.md). Every answer here, errors included, is shaped as
Twilio documents it, so the native routes' error shape is neither used nor changed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from smscode.domain.errors import (
    InvalidPhone,
    NotFound,
    RateLimited,
    SmsCodeError,
    Unavailable,
)
from smscode.domain.verifications import MaxCheckAttempts, Verification
from smscode.entrypoints.auth import authenticate, foreign_origin
from smscode.entrypoints.web import Handler, HttpRequest, HttpResponse, Route, parse_body
from smscode.entrypoints.web import json_response as _json
from smscode.service_layer.verifications import Verifications
from smscode.settings import Settings

_SERVICE = r"/v2/Services/(?P<service>[^/]+)"
_VERIFICATION_SID = re.compile(r"VE[0-9a-fA-F]{32}")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Twilio's codes for our per-number caps ("max send attempts") and every other send cap.
_PER_NUMBER_CAPS = frozenset({"resend_interval", "phone_daily"})
_STATUSES = frozenset({"canceled", "approved"})

Handle = Callable[[HttpRequest, "re.Match[str]", str], HttpResponse]


class TwilioError(Exception):
    """An answer in Twilio's error shape: HTTP status, Twilio code, message."""

    def __init__(self, status: int, code: int, message: str, retry_after: int = 0) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after

    def response(self) -> HttpResponse:
        """Twilio's legacy error body, which its clients raise as TwilioRestException."""
        response = _json(self.status, {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        })  # fmt: skip
        if self.retry_after:
            response.headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="smscode"'
        return response


def _not_found(path: str) -> TwilioError:
    return TwilioError(
        404, 20404, f"The requested resource {path.removeprefix('/v2') or '/'} was not found"
    )


def _invalid(parameter: str) -> TwilioError:
    return TwilioError(400, 60200, f"Invalid parameter: {parameter}")


def _translate(error: SmsCodeError, path: str) -> TwilioError:
    """A core error as the Twilio error a client of Verify expects for that case."""
    if isinstance(error, NotFound):
        return _not_found(path)
    if isinstance(error, MaxCheckAttempts):
        return TwilioError(429, 60202, "Max check attempts reached")
    if isinstance(error, RateLimited):
        if error.reason in _PER_NUMBER_CAPS:
            return TwilioError(429, 60203, "Max send attempts reached", error.retry_after)
        return TwilioError(429, 20429, "Too many requests", error.retry_after)
    if isinstance(error, InvalidPhone):
        return _invalid("To")
    if isinstance(error, Unavailable):
        return TwilioError(503, 20503, "Service unavailable; please try again shortly")
    return TwilioError(400, 60200, f"Invalid parameter: {error.message}")


def account_sid(key_id: str) -> str:
    """The `AC…` sid answered to an API key: stable, and never the key id itself."""
    return "AC" + hashlib.sha256(f"smscode-account:{key_id}".encode()).hexdigest()[:32]


def twilio_date(ms: int) -> str:
    """Twilio's date format, which its clients parse with exactly this pattern."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def twilio_time(ms: int) -> str:
    """A send attempt's time, with milliseconds as Twilio gives it."""
    moment = datetime.fromtimestamp(ms // 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{ms % 1000:03d}Z"


def _common(verification: Verification, account: str) -> dict[str, Any]:
    return {
        "sid": verification.sid,
        "service_sid": verification.service_sid,
        "account_sid": account,
        "to": verification.phone,
        "channel": "sms",
        "status": verification.status,
        "valid": verification.valid,
    }


def _resource(verification: Verification, account: str, request: HttpRequest) -> dict[str, Any]:
    """The Verification resource, every field present, the unused ones null as Twilio's are."""
    scheme = "https" if request.headers.get("x-forwarded-proto") == "https" else "http"
    host = request.headers.get("host", "127.0.0.1")
    path = f"/v2/Services/{verification.service_sid}/Verifications/{verification.sid}"
    return {
        **_common(verification, account),
        "date_created": twilio_date(verification.created_ms),
        "date_updated": twilio_date(verification.updated_ms),
        "lookup": {},
        "amount": None,
        "payee": None,
        "send_code_attempts": [
            {"time": twilio_time(send.at_ms), "channel": "sms", "attempt_sid": send.sid}
            for send in verification.sends
        ],
        "sna": None,
        "url": f"{scheme}://{host}{path}",
    }


def _check_resource(verification: Verification, account: str) -> dict[str, Any]:
    """The VerificationCheck resource: the verification's sid and where it now stands."""
    return {
        **_common(verification, account),
        "amount": None,
        "payee": None,
        "sna_attempts_error_codes": [],
        "date_created": twilio_date(verification.created_ms),
        "date_updated": twilio_date(verification.updated_ms),
    }


def _device_ip(value: str) -> str:
    """Twilio's DeviceIp, the end user's address, counted by the per-address cap."""
    if not value:
        return ""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise _invalid("DeviceIp") from None


class TwilioVerify:
    """The Verify v2 routes, each behind API-key auth and the VERIFY_SERVICE_SIDS check."""

    def __init__(
        self, verifications: Callable[[], Verifications], settings: Callable[[], Settings]
    ) -> None:
        self._verifications = verifications  # built lazily, like the native use cases
        self._settings = settings

    def routes(self) -> list[Route]:
        """The route table entries; the last answers Twilio's 404 for any other /v2 path."""
        return [
            (re.compile(rf"{_SERVICE}/Verifications"), self._methods(POST=self.create)),
            (
                re.compile(rf"{_SERVICE}/Verifications/(?P<sid>[^/]+)"),
                self._methods(GET=self.fetch, POST=self.update),
            ),
            (re.compile(rf"{_SERVICE}/VerificationCheck"), self._methods(POST=self.check)),
            (re.compile(r"/v2(?:/.*)?", re.DOTALL), self._methods()),
        ]

    def _methods(self, **handles: Handle) -> dict[str, Handler]:
        return {method: self._guarded(handles.get(method)) for method in _METHODS}

    def _guarded(self, handle: Handle | None) -> Handler:
        def guarded(request: HttpRequest, match: re.Match[str]) -> HttpResponse:
            try:
                account = self._authorize(request, match)
                if handle is None:
                    if "service" in match.groupdict():
                        raise TwilioError(405, 20004, "Method not allowed")
                    raise _not_found(request.path)
                return handle(request, match, account)
            except TwilioError as error:
                return error.response()
            except SmsCodeError as error:
                return _translate(error, request.path).response()

        return guarded

    def _authorize(self, request: HttpRequest, match: re.Match[str]) -> str:
        """The caller's account sid; 403 for a write from another site's page, 401 without a
        valid API key, 404 for a service not ours."""
        settings = self._settings()
        if foreign_origin(request.method, request.headers, settings.cors_origins):
            raise TwilioError(403, 20403, "Forbidden")
        key_id = authenticate(request.headers, settings.api_keys)
        if key_id is None:
            if "authorization" not in request.headers:
                raise TwilioError(401, 20003, "Authentication Error - No credentials provided")
            raise TwilioError(401, 20003, "Authentication Error - invalid username")
        service = match.groupdict().get("service")
        if service is not None and service not in settings.verify_service_sids:
            raise _not_found(request.path)
        return account_sid(key_id)

    def create(self, request: HttpRequest, match: re.Match[str], account: str) -> HttpResponse:
        """POST …/Verifications: send a code (To, Channel=sms; CustomFriendlyName, Locale)."""
        form = parse_body(request)
        if not form.get("To"):
            raise _invalid("To")
        if form.get("Channel") != "sms":
            raise _invalid("Channel")
        verification = self._verifications().start(
            match["service"], form["To"], _device_ip(form.get("DeviceIp", ""))
        )
        return _json(201, _resource(verification, account, request))

    def fetch(self, request: HttpRequest, match: re.Match[str], account: str) -> HttpResponse:
        """GET …/Verifications/{Sid}: a pending verification."""
        sid = self._sid(match["sid"], request)
        verification = self._verifications().fetch(match["service"], sid)
        return _json(200, _resource(verification, account, request))

    def update(self, request: HttpRequest, match: re.Match[str], account: str) -> HttpResponse:
        """POST …/Verifications/{Sid} with Status=canceled|approved."""
        sid = self._sid(match["sid"], request)
        status = parse_body(request).get("Status", "")
        if status not in _STATUSES:
            raise _invalid("Status")
        verification = self._verifications().close(
            match["service"], sid, "canceled" if status == "canceled" else "approved"
        )
        return _json(200, _resource(verification, account, request))

    def check(self, request: HttpRequest, match: re.Match[str], account: str) -> HttpResponse:
        """POST …/VerificationCheck: Code with To or VerificationSid; a wrong code is 200."""
        form = parse_body(request)
        code = form.get("Code", "")
        if not 4 <= len(code) <= 10:
            raise _invalid("Code")
        sid = form.get("VerificationSid", "")
        if not sid and not form.get("To"):
            raise _invalid("To")
        verification = self._verifications().check(
            match["service"],
            code,
            raw_phone=form.get("To", ""),
            sid=self._sid(sid, request) if sid else "",
        )
        return _json(200, _check_resource(verification, account))

    @staticmethod
    def _sid(sid: str, request: HttpRequest) -> str:
        if not _VERIFICATION_SID.fullmatch(sid):
            raise _not_found(request.path)
        return sid


def routes(
    verifications: Callable[[], Verifications], settings: Callable[[], Settings]
) -> list[Route]:
    """The Twilio Verify routes for the API's route table."""
    return TwilioVerify(verifications, settings).routes()
