"""Settings, read from environment variables once per process (names as in the contract)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from functools import lru_cache
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from smscode.domain import phones
from smscode.domain.errors import InvalidPhone

# Each provider SMS_PROVIDER may list, and the settings it cannot do without.
PROVIDER_REQUIRES: dict[str, tuple[str, ...]] = {
    "console": (),
    "ronglian": ("ronglian_acc_id", "ronglian_acc_token", "ronglian_app_id"),
    "aliyun": (
        "aliyun_access_key_id", "aliyun_access_key_secret",
        "aliyun_sign_name", "aliyun_template_code",
    ),
}  # fmt: skip


def _comma_list(value: str) -> list[str]:
    """The non-empty items of a comma-separated setting, stripped."""
    return [item for item in (part.strip() for part in value.split(",")) if item]


def _parsed_from_text(*fields: str) -> Callable[[Callable[[str], object]], Any]:
    """Make `parse(text)` the `before` validator of these fields: the environment gives text,
    while a value passed already parsed (in code, in tests) goes through as it is."""

    def validator(parse: Callable[[str], object]) -> Any:
        def validate(cls: type, value: object) -> object:
            return parse(value) if isinstance(value, str) else value

        return field_validator(*fields, mode="before")(classmethod(validate))

    return validator


class SettingsError(Exception):
    """A missing or invalid setting; the message is one line naming the variable."""


class Settings(BaseModel):
    """Every knob of smscode; the field name upper-cased is the environment variable.

    Made, it reads the environment (see `_environment`), as pydantic-settings' BaseSettings
    did; that library's import and sources were a tenth of the Lambda HTTP function's cold
    start (import and first settings read), for a lookup of names.
    """

    # validate_default: a default passes the same checks as a value from the environment.
    model_config = ConfigDict(
        frozen=True, extra="ignore", hide_input_in_errors=True, validate_default=True
    )

    redis_url: str
    code_secret: SecretStr = Field(min_length=16)

    delivery_backend: Literal["celery", "sqs", "pubsub", "inline"] = "celery"
    celery_broker_url: str | None = None
    # The queue name: several deployments (or test runs) can then share one broker.
    celery_queue: str = Field(default="celery", pattern=r"^[A-Za-z0-9_.:-]{1,200}$")
    # A Celery message with no final state this long after it was queued (or last retried)
    # is queued again: on a Redis broker this is what brings back the tasks of a worker that
    # died (kombu's ack emulation is off, adapters/celery_app.py).
    delivery_recheck_seconds: int = Field(default=60, ge=2, le=86400)
    # Retry pace for a delivery that may be retried (full-jitter exponential backoff); an
    # operator slows it for a throttled account, tests speed it up to stay short.
    delivery_retry_base_seconds: float = Field(default=1.0, gt=0, le=60)
    delivery_retry_max_seconds: float = Field(default=30.0, gt=0, le=600)
    sqs_queue_url: str | None = None
    pubsub_topic: str | None = None  # projects/<project>/topics/<topic>

    # One provider, or several in failover order ("ronglian,aliyun"): see `providers`.
    sms_provider: str = "console"
    ronglian_acc_id: str | None = None
    ronglian_acc_token: SecretStr | None = None
    ronglian_app_id: str | None = None
    ronglian_template_id: str = Field(default="1", pattern=r"^[0-9]{1,20}$")
    ronglian_base_url: str = Field(default="https://app.cloopen.com:8883", pattern=r"^https?://")
    ronglian_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    ronglian_read_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    aliyun_access_key_id: str | None = None
    aliyun_access_key_secret: SecretStr | None = None
    aliyun_sign_name: str | None = None
    aliyun_template_code: str | None = None
    aliyun_endpoint: str = Field(default="https://dysmsapi.aliyuncs.com", pattern=r"^https?://")
    aliyun_connect_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    aliyun_read_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # After an ambiguous Aliyun answer, wait this long before asking QuerySendDetails whether
    # it sent (its records lag the send), and resend only if they show nothing.
    aliyun_lookup_delay_seconds: float = Field(default=10.0, ge=0, le=600)
    # The circuit breaker each listed provider gets when there are several (README "Failover").
    circuit_failure_threshold: int = Field(default=5, ge=1, le=1000)
    circuit_window_seconds: float = Field(default=30.0, gt=0, le=3600)
    circuit_cooldown_seconds: float = Field(default=30.0, gt=0, le=3600)

    code_length: int = Field(default=6, ge=4, le=10)
    code_ttl_seconds: int = Field(default=300, ge=30, le=86400)
    resend_interval_seconds: int = Field(default=60, ge=0, le=86400)
    max_verify_attempts: int = Field(default=5, ge=1, le=100)
    phone_daily_limit: int = Field(default=10, ge=1)
    ip_hourly_limit: int = Field(default=20, ge=1)
    prefix_hourly_limit: int = Field(default=100, ge=1)
    global_minute_limit: int = Field(default=600, ge=1)
    # Wrong codes per phone per 24 h, counted only against a live code (a verify for a phone
    # without one changes nothing of the phone's), so no one locks a phone out for free.
    verify_failures_daily_limit: int = Field(default=20, ge=1)
    # Failed verifications per client (IPv4 address, IPv6 /64) per hour: 5 wrong tries for
    # each of IP_HOURLY_LIMIT's sends (429 rate_limited beyond).
    verify_ip_hourly_limit: int = Field(default=100, ge=1)
    # Abuse resistance (see README "Security"); comma lists are parsed by the validators below.
    trusted_proxy_count: int = Field(default=0, ge=0, le=10)
    send_allowed_prefixes: tuple[str, ...] = ("+861",)
    cors_origins: frozenset[str] = frozenset()
    # Server-to-server routes (Twilio-compatible API, /admin): "id:secret" pairs by commas.
    api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # The Twilio Verify services (VA… sids, by commas) the Twilio-compatible routes answer for.
    verify_service_sids: frozenset[str] = frozenset()
    # SMS pumping (README "Stopping SMS pumping"): conversion per number block. A
    # PUMPING_MIN_CONVERSION of 0 turns the rule off; PUMPING_ALLOW exempts blocks and phones.
    pumping_min_sends: int = Field(default=20, ge=1)
    pumping_min_conversion: float = Field(default=0.2, ge=0, le=1)
    pumping_window_seconds: int = Field(default=3600, ge=60, le=7 * 86400)
    pumping_block_seconds: int = Field(default=3600, ge=1, le=30 * 86400)
    pumping_allow: frozenset[str] = frozenset()
    # A block is refused for everyone only on sends from this many client networks (IPv4
    # /24, IPv6 /48); one network that fails the rule alone is refused that block alone.
    pumping_min_networks: int = Field(default=5, ge=1, le=1000)
    # Set by Cloud Run (and Cloud Run functions): behind Google's front end the socket peer
    # is Google's, so at least one X-Forwarded-For entry is believed (clientip.py).
    k_service: str | None = None

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    serve_workers: int = Field(default_factory=lambda: os.cpu_count() or 1, ge=1)
    serve_threads: int = Field(default=8, ge=1)
    # `smscode worker`'s threads: at a 100 ms provider one worker delivers at most this many
    # / 0.1 SMS/s; 128 is where one stock Celery worker passes 500 SMS/s (bench/README.md).
    worker_concurrency: int = Field(default=128, ge=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # the worker's exporter
    # Fixed codes for app-store reviewers and QA: E.164 phone -> code, no SMS, no caps.
    test_phones: dict[str, str] = Field(default_factory=dict)
    allow_test_phones: bool = False
    # Verification tokens (README "Use it from your backend"): signed when a key is set.
    token_signing_key: SecretStr | None = None
    token_published_keys: SecretStr | None = None  # may hold private PEMs: never echoed
    token_issuer: str = Field(default="smscode", min_length=1, max_length=200)
    token_audience: str | None = Field(default=None, min_length=1, max_length=200)
    token_ttl_seconds: int = Field(default=600, ge=10, le=86400)

    @model_validator(mode="before")
    @classmethod
    def _environment(cls, data: object) -> object:
        """The environment's variables, under any value given in code: names matched
        case-insensitively, values kept as text for the field validators to parse."""
        if not isinstance(data, dict):
            return data
        env = {name.lower(): value for name, value in os.environ.items()}
        return {**{name: env[name] for name in cls.model_fields if name in env}, **data}

    @field_validator("sms_provider")
    @classmethod
    def _provider_names(cls, value: str) -> str:
        names = [part.strip() for part in value.split(",")]
        if not all(names) or any(name not in PROVIDER_REQUIRES for name in names):
            known = ", ".join(PROVIDER_REQUIRES)
            raise ValueError(f"expected one of {known}, or several separated by commas")
        if len(set(names)) != len(names):
            raise ValueError("a provider is listed twice")
        return ",".join(names)

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str) -> str:
        schemes = ("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")
        if not value.startswith(schemes):
            raise ValueError(
                "must start with redis://, rediss://, unix:// or (Redis Cluster) "
                "redis+cluster://, rediss+cluster://"
            )
        return value

    @field_validator("pubsub_topic")
    @classmethod
    def _topic_path(cls, value: str | None) -> str | None:
        # Pub/Sub's own rules for a topic id: a letter, then 2-254 of these characters.
        topic = r"projects/[a-z0-9.:-]{1,100}/topics/[A-Za-z][A-Za-z0-9._~%+-]{2,254}"
        if value is not None and not re.fullmatch(topic, value):
            raise ValueError("expected projects/<project>/topics/<topic>")
        return value

    @_parsed_from_text("test_phones")
    @staticmethod
    def _parse_test_phones(value: str) -> object:
        pairs: dict[str, str] = {}
        for item in _comma_list(value):
            phone, _, code = (side.strip() for side in item.partition(":"))
            if not re.fullmatch(r"[0-9]{4,10}", code):
                raise ValueError("expected phone:code pairs separated by commas, 4-10 digit codes")
            try:
                pairs[phones.normalize(phone)] = code
            except InvalidPhone:
                raise ValueError(f"{phone!r} is not a mainland China mobile number") from None
        return pairs

    @_parsed_from_text("send_allowed_prefixes")
    @staticmethod
    def _parse_prefixes(value: str) -> object:
        prefixes = tuple(_comma_list(value))
        if not prefixes or not all(re.fullmatch(r"\+[0-9]{1,15}", p) for p in prefixes):
            raise ValueError("expected E.164 prefixes separated by commas, e.g. +861")
        return prefixes

    @_parsed_from_text("api_keys")
    @staticmethod
    def _parse_api_keys(value: str) -> object:
        pairs: dict[str, str] = {}
        for item in _comma_list(value):
            key_id, sep, secret = item.partition(":")
            if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", key_id) or len(secret) < 24:
                # never echo the value: it holds secrets
                raise ValueError(
                    "expected id:secret pairs separated by commas, secrets >= 24 chars"
                )
            pairs[key_id] = secret
        return pairs

    @_parsed_from_text("verify_service_sids")
    @staticmethod
    def _parse_service_sids(value: str) -> object:
        sids = frozenset(_comma_list(value))
        if not all(re.fullmatch(r"VA[0-9a-fA-F]{32}", sid) for sid in sids):
            raise ValueError("expected Twilio service sids (VA + 32 hex) separated by commas")
        return sids

    @_parsed_from_text("pumping_allow")
    @staticmethod
    def _parse_pumping_allow(value: str) -> object:
        allowed = set()
        for item in _comma_list(value):
            if re.fullmatch(r"1[0-9]{6}|\+[1-9][0-9]{0,2}", item):  # a block: 1380013, +44
                allowed.add(item)
                continue
            try:
                allowed.add(phones.normalize(item))
            except InvalidPhone:
                raise ValueError(
                    f"{item!r} is neither a block (1380013, +44) nor a mainland mobile"
                ) from None
        return frozenset(allowed)

    @_parsed_from_text("cors_origins")
    @staticmethod
    def _parse_origins(value: str) -> object:
        origins = frozenset(_comma_list(value))
        # An exact origin only: a browser sends "scheme://host[:port]", never a path or "*".
        if not all(re.fullmatch(r"https?://[A-Za-z0-9.\-\[\]:]+", o) for o in origins):
            raise ValueError("expected origins like https://example.com separated by commas")
        return origins

    @field_validator("token_signing_key", "token_published_keys", mode="before")
    @classmethod
    def _token_keys(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        if not value.strip():  # set but empty: no key, as when unset
            return None
        from smscode.domain import signing_keys  # cryptography's key loaders: only with a key

        # A bad key stops the start with one line, not the first verification with a 500.
        if info.field_name == "token_signing_key":
            signing_keys.private_key(value)
        else:
            signing_keys.public_keys(value)
        return value

    @model_validator(mode="after")
    def _test_phones_allowed(self) -> Settings:
        if self.test_phones and not self.allow_test_phones:
            raise ValueError(
                "TEST_PHONES is set but ALLOW_TEST_PHONES is not true; "
                "set ALLOW_TEST_PHONES=true to accept fixed codes"
            )
        return self

    @model_validator(mode="after")
    def _backend_needs(self) -> Settings:
        cluster = "+cluster://" in self.redis_url  # Celery's Redis transport cannot use one
        if cluster and self.delivery_backend == "celery" and not self.celery_broker_url:
            raise ValueError("CELERY_BROKER_URL is required when REDIS_URL is a cluster")
        if self.delivery_backend == "sqs" and not self.sqs_queue_url:
            raise ValueError("SQS_QUEUE_URL is required when DELIVERY_BACKEND=sqs")
        if self.delivery_backend == "pubsub" and not self.pubsub_topic:
            raise ValueError("PUBSUB_TOPIC is required when DELIVERY_BACKEND=pubsub")
        for provider in self.providers:
            for name in PROVIDER_REQUIRES[provider]:
                if not getattr(self, name):
                    raise ValueError(f"{name.upper()} is required when {provider} is listed")
        return self

    @property
    def providers(self) -> tuple[str, ...]:
        """SMS_PROVIDER's names, in failover order."""
        return tuple(self.sms_provider.split(","))

    @property
    def broker_url(self) -> str:
        """The Celery broker: CELERY_BROKER_URL, else the Redis of the codes."""
        return self.celery_broker_url or self.redis_url

    @property
    def code_minutes(self) -> int:
        """The code's lifetime in whole minutes, as the SMS template states it."""
        return max(1, self.code_ttl_seconds // 60)


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    name = "_".join(str(part) for part in first["loc"]).upper()
    message = str(first["msg"]).removeprefix("Value error, ")
    if not name:  # a model-level check names its variable in the message itself
        return f"invalid settings: {message}"
    if first["type"] == "missing":
        return f"{name} is required but not set"
    return f"{name} is invalid: {message}"


def load_settings() -> Settings:
    """Read and validate the settings from the environment.

    Raises:
        SettingsError: one line naming the first bad or missing variable.
    """
    try:
        return Settings.model_validate({})  # the environment only (see Settings._environment)
    except ValidationError as error:
        raise SettingsError(_one_line(error)) from None


def settings_or_exit() -> Settings:
    """The settings, or exit 2 with one line naming the bad variable: every command's start."""
    try:
        return load_settings()
    except SettingsError as error:
        print(f"smscode: {error}", file=sys.stderr)
        raise SystemExit(2) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use."""
    return load_settings()
