"""The errors the core raises, each mapped to the contract's HTTP status and error code."""

from __future__ import annotations

from typing import Any, ClassVar


class SmsCodeError(Exception):
    """Base of every error a caller should see, with its contract code and HTTP status."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid_request"

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields

    def body(self) -> dict[str, Any]:
        """The contract's JSON error body."""
        return {"status": "error", "error": self.code, "message": self.message, **self.fields}


class InvalidRequest(SmsCodeError):
    """The body is not JSON or a form, or a field is missing or malformed."""


class InvalidPhone(SmsCodeError):
    """Not a mainland-China mobile number."""

    code = "invalid_phone"


class PayloadTooLarge(SmsCodeError):
    """The body is over the size limit."""

    status = 413
    code = "payload_too_large"


class NotFound(SmsCodeError):
    """No such route or resource."""

    status = 404
    code = "not_found"


class Unauthorized(SmsCodeError):
    """A server-to-server route without a valid API key."""

    status = 401
    code = "unauthorized"


class Forbidden(SmsCodeError):
    """A request refused whatever its key: a keyed write sent from another site's page."""

    status = 403
    code = "forbidden"


class MethodNotAllowed(SmsCodeError):
    """The route exists but not for this method."""

    status = 405
    code = "method_not_allowed"


class RateLimited(SmsCodeError):
    """A send cap was hit; `retry_after` seconds until the next try can succeed."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after: int, reason: str = "") -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after
        self.reason = reason  # the cap's name, for APIs that answer each cap differently


class FraudSuspected(RateLimited):
    """The phone's number block looks pumped (many codes, few verified): sends refused a while."""

    code = "fraud_suspected"


class InvalidCode(SmsCodeError):
    """A wrong code; `attempts_left` before it is burned."""

    code = "invalid_code"


class NoActiveCode(SmsCodeError):
    """No code is waiting for this phone (never sent, expired, used or burned)."""

    code = "no_active_code"


class TooManyAttempts(SmsCodeError):
    """Too many wrong tries: the code is burned."""

    status = 429
    code = "too_many_attempts"


class Unavailable(SmsCodeError):
    """Redis or the queue cannot be reached; try again shortly."""

    status = 503
    code = "unavailable"
