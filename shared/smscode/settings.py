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


def _shown(default: str) -> dict[str, Any]:
    """What the settings reference shows as a field's default, where its value would not."""
    return {"shown": default}


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

    # Each field's description is the settings reference (docs/reference/settings.md is made
    # from them); `shown` stands in the reference's default column where the value would not
    # say it (a default computed at start, or one that `smscode dev` provides).

    # -- storage and queues
    redis_url: str = Field(
        description="Codes, caps, delivery state and idempotency. `redis://`, `rediss://` (TLS) "
        "or `unix://`; `redis+cluster://host:port` (or `rediss+cluster://`, no database "
        "number) for Redis Cluster, which then needs `CELERY_BROKER_URL`.",
        json_schema_extra=_shown(
            "embedded server in `smscode dev` and the tests; required otherwise"
        ),
    )
    code_secret: SecretStr = Field(
        min_length=16,
        description="The same on every instance: the key that hashes codes at rest "
        "(HMAC-SHA256) and seals them on the queue (AES-GCM, HKDF-derived).",
        json_schema_extra=_shown("random per `smscode dev` run; required otherwise"),
    )
    delivery_backend: Literal["celery", "sqs", "pubsub", "inline"] = Field(
        default="celery",
        description="How an accepted send reaches delivery: `celery` (a Celery broker), `sqs`, "
        "`pubsub`, or `inline` (delivered in the request's own process: tests and demos).",
    )
    celery_broker_url: str | None = Field(
        default=None,
        description="Any Celery broker: Redis (`redis://`, `rediss://`) or RabbitMQ "
        "(`amqp://`). Unset, the broker is `REDIS_URL`'s database, and the script that "
        "accepts a send also queues it: one Redis round trip per accepted send.",
        json_schema_extra=_shown("`REDIS_URL`"),
    )
    celery_queue: str = Field(
        default="celery",
        pattern=r"^[A-Za-z0-9_.:-]{1,200}$",
        description="The queue's name, so that several deployments (or test runs) can share "
        "one broker.",
    )
    delivery_recheck_seconds: int = Field(
        default=60,
        ge=2,
        le=86400,
        description="Celery: a send with no final state this long after it was queued (or "
        "last retried) is queued again from the outbox. On a Redis broker this is how soon a "
        "dead worker's tasks come back (kombu's ack emulation is off). A copy costs a claim in "
        "Redis, never an SMS; raise it if queue backlogs this long are normal.",
    )
    delivery_retry_base_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Full-jitter exponential backoff between delivery retries: a random wait "
        "up to this × 2^attempt, at most `DELIVERY_RETRY_MAX_SECONDS`; slow it for a "
        "throttled account.",
    )
    delivery_retry_max_seconds: float = Field(
        default=30.0,
        gt=0,
        le=600,
        description="The longest wait between two delivery retries.",
    )
    sqs_queue_url: str | None = Field(
        default=None,
        description="The delivery queue when `DELIVERY_BACKEND=sqs`.",
    )
    pubsub_topic: str | None = Field(
        default=None,
        description="`projects/<project>/topics/<topic>`: the delivery topic when "
        "`DELIVERY_BACKEND=pubsub` (needs the `gcp` extra).",
    )

    # -- SMS providers
    sms_provider: str = Field(
        default="console",
        description="`console` (prints each SMS), `ronglian`, `aliyun`, or several in "
        "failover order, e.g. `ronglian,aliyun`.",
    )
    ronglian_acc_id: str | None = Field(
        default=None, description="Ronglian's account SID; required when `ronglian` is listed."
    )
    ronglian_acc_token: SecretStr | None = Field(
        default=None, description="Ronglian's auth token; required when `ronglian` is listed."
    )
    ronglian_app_id: str | None = Field(
        default=None, description="Ronglian's app id; required when `ronglian` is listed."
    )
    ronglian_template_id: str = Field(
        default="1",
        pattern=r"^[0-9]{1,20}$",
        description="The approved code template; it is sent `datas = [code, minutes]`.",
    )
    ronglian_base_url: str = Field(
        default="https://app.cloopen.com:8883",
        pattern=r"^https?://",
        description="Ronglian's API. Its sandbox: `https://sandboxapp.cloopen.com:8883`; the "
        "tests point it at a local fake.",
    )
    ronglian_connect_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="Per Ronglian call: the time to look its name up and connect. With the read "
        "timeout, the most one call may take, answer included: the delivery lease is sized "
        "from these sums.",
    )
    ronglian_read_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Per Ronglian call: the time to read its answer."
    )
    aliyun_access_key_id: str | None = Field(
        default=None, description="Required when `aliyun` is listed."
    )
    aliyun_access_key_secret: SecretStr | None = Field(
        default=None, description="Required when `aliyun` is listed."
    )
    aliyun_sign_name: str | None = Field(
        default=None, description="The SMS signature; required when `aliyun` is listed."
    )
    aliyun_template_code: str | None = Field(
        default=None,
        description='The code template (it gets `{"code":"<code>"}`); required when `aliyun` '
        "is listed.",
    )
    aliyun_endpoint: str = Field(
        default="https://dysmsapi.aliyuncs.com",
        pattern=r"^https?://",
        description="Aliyun's SMS API; the tests point it at a local fake.",
    )
    aliyun_connect_timeout_seconds: float = Field(
        default=2.0,
        gt=0,
        le=30,
        description="Per Aliyun call: the time to look its name up and connect (Alibaba asks "
        "for 1 s or more).",
    )
    aliyun_read_timeout_seconds: float = Field(
        default=5.0, gt=0, le=60, description="Per Aliyun call: the time to read its answer."
    )
    aliyun_lookup_delay_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="After an ambiguous Aliyun answer, wait this long before asking "
        "`QuerySendDetails` whether it sent (its records lag the send); resend only if they "
        "show nothing. Raise it if `smscode_resends_after_lookup_total` ever grows.",
    )
    circuit_failure_threshold: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="With several providers: failures in a row (not sent or maybe sent) that "
        "open a provider's circuit.",
    )
    circuit_window_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="... counted within this window: an older run of failures starts again at 0.",
    )
    circuit_cooldown_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="An open circuit lets one probe through after this long; traffic returns "
        "when the probe succeeds.",
    )

    # -- the code and its caps
    code_length: int = Field(
        default=6, ge=4, le=10, description="Digits of a code, drawn uniformly with `secrets`."
    )
    code_ttl_seconds: int = Field(
        default=300, ge=30, le=86400, description="How long a code can be verified."
    )
    resend_interval_seconds: int = Field(
        default=60, ge=0, le=86400, description="Per phone, the wait between two sends."
    )
    max_verify_attempts: int = Field(
        default=5, ge=1, le=100, description="Wrong tries before a code is burned."
    )
    phone_daily_limit: int = Field(default=10, ge=1, description="Sends per phone per 24 h.")
    ip_hourly_limit: int = Field(
        default=20, ge=1, description="Sends per client IP (IPv6: per /64) per hour."
    )
    prefix_hourly_limit: int = Field(
        default=100,
        ge=1,
        description="Sends per number block (the first 7 national digits, `1380013…`) per hour.",
    )
    global_minute_limit: int = Field(
        default=600,
        ge=1,
        description="All sends per minute, the ceiling on the bill when everything else is "
        "bypassed (600: at most 864,000 SMS a day): set it to your budget.",
    )
    verify_failures_daily_limit: int = Field(
        default=20,
        ge=1,
        description="Wrong codes against a phone's live codes per 24 h, across codes; then "
        "the phone is locked for the day. A verify for a phone without a live code never "
        "counts here (nor changes anything of the phone's), so no one locks a phone for free.",
    )
    verify_ip_hourly_limit: int = Field(
        default=100,
        ge=1,
        description="Failed verifications (any but a success) one client may ask for per hour: "
        "an IPv4 address, an IPv6 /64; then 429 `rate_limited` with `retry_after`. 100 is 5 "
        "tries for each of `IP_HOURLY_LIMIT`'s sends.",
    )

    # -- abuse resistance (comma lists are parsed by the validators below)
    trusted_proxy_count: int = Field(
        default=0,
        ge=0,
        le=10,
        description="How many proxies in front append to `X-Forwarded-For`: the entry that many "
        "from the right is the client (the left part is the client's to write). Never more "
        "than you run. On Cloud Run (`K_SERVICE` set) at least 1, the entry Google's front "
        "end appends; see each run mode's page.",
    )
    send_allowed_prefixes: tuple[str, ...] = Field(
        default=("+861",),
        description="Comma-separated E.164 prefixes a destination must start with, else 400 "
        "`invalid_phone`.",
    )
    cors_origins: frozenset[str] = Field(
        default=frozenset(),
        description="Comma-separated exact origins (`https://app.example`) allowed to call "
        "`/codes*` from a browser; they also count as this service's own for keyed writes.",
    )
    api_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Comma-separated `id:secret` pairs (each secret 24+ characters) for the "
        "server-to-server routes (Twilio Verify), `/admin*` and `/metrics`: HTTP Basic "
        "`id:secret` or `Authorization: Bearer id:secret`, compared in constant time. A "
        "browser request marked `Sec-Fetch-Site: cross-site` is refused even with a key, and "
        "so is a keyed write whose `Origin` is neither this service's own nor in "
        "`CORS_ORIGINS` (403; no `Origin`, as servers send, passes). Unset, those routes "
        "answer 401.",
    )
    verify_service_sids: frozenset[str] = Field(
        default=frozenset(),
        description="Comma-separated Twilio service sids (`VA` + 32 hex) the Twilio "
        "Verify-compatible routes answer for; any other is 404 code 20404.",
    )
    pumping_min_sends: int = Field(
        default=20,
        ge=1,
        description="A number block whose window holds at least this many sends, and fewer "
        "verified than `PUMPING_MIN_CONVERSION` of them, is refused (429 `fraud_suspected`).",
    )
    pumping_min_conversion: float = Field(
        default=0.2,
        ge=0,
        le=1,
        description="The share of a block's sends that must be verified; 0 turns the rule off "
        "(the counting still runs).",
    )
    pumping_window_seconds: int = Field(
        default=3600,
        ge=60,
        le=7 * 86400,
        description="The sliding window the conversion is measured over (60 buckets).",
    )
    pumping_block_seconds: int = Field(
        default=3600,
        ge=1,
        le=30 * 86400,
        description="How long a block the rule refuses stays refused (and the default of a "
        "block by hand).",
    )
    pumping_allow: frozenset[str] = Field(
        default=frozenset(),
        description="Comma-separated blocks (`1380013`, `+44`) and phones the rule never "
        "refuses, nor counts: your own ranges, QA phones.",
    )
    pumping_min_networks: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="A block is refused to everyone only on unverified sends from at least "
        "this many client networks (IPv4 /24, IPv6 /48); one network that fails the rule on "
        "its own sends is refused that block alone. `1` refuses a block on any one network's "
        "sends.",
    )
    k_service: str | None = Field(
        default=None,
        description="Set by Cloud Run and Cloud Run functions, not by you: behind Google's "
        "front end the socket's peer is Google's, so at least one `X-Forwarded-For` entry is "
        "believed.",
    )

    # -- processes
    host: str = Field(
        default="127.0.0.1",
        description="Where `smscode serve` listens, and the worker's metrics exporter.",
    )
    port: int = Field(default=8080, ge=1, le=65535, description="`smscode serve`'s port.")
    serve_workers: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="gunicorn processes of `smscode serve`.",
        json_schema_extra=_shown("the CPU count"),
    )
    serve_threads: int = Field(
        default=8,
        ge=1,
        description="Threads per gunicorn process; where Redis is a network hop away (a "
        "millisecond or more), 16-32.",
    )
    worker_concurrency: int = Field(
        default=128,
        ge=1,
        description="`smscode worker`'s threads (deliveries in flight): at a provider latency "
        "L one worker delivers at most this many / L per second (128 at 100 ms: 1,280 SMS/s; "
        "measured ~550-600 at one core, see the benchmarks). 128 is where one worker passes "
        "500 SMS/s at a 100 ms provider, and 64 does not.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", description="JSON log lines on stderr, from this level up."
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="The worker's Prometheus exporter port; unset, it serves none.",
    )

    # -- fixed codes and verification tokens
    test_phones: dict[str, str] = Field(
        default_factory=dict,
        description="`phone:code,…` for app-store reviewers and QA: those phones get a fixed "
        "code, no SMS and no cap, while sending and verifying answer as usual. Refused at "
        "start unless `ALLOW_TEST_PHONES=true`; every start warns while it is active.",
    )
    allow_test_phones: bool = Field(
        default=False, description="Must be `true` for `TEST_PHONES` to be accepted."
    )
    token_signing_key: SecretStr | None = Field(
        default=None,
        description="An Ed25519 private key, PKCS#8 PEM (`openssl genpkey -algorithm "
        "ed25519`): with it, a successful verify also answers a signed `token`. A `\\n` "
        "typed literally counts as a line break.",
        json_schema_extra=_shown("random per `smscode dev` run; none otherwise"),
    )
    token_published_keys: SecretStr | None = Field(
        default=None,
        description="More Ed25519 keys (PEM blocks, public or private: only the public half "
        "is published) for `/.well-known/jwks.json`, never for signing: the next key before "
        "it signs, the previous one until its last token expired (key rotation).",
    )
    token_issuer: str = Field(
        default="smscode",
        min_length=1,
        max_length=200,
        description="The token's `iss`.",
    )
    token_audience: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The token's `aud` (omitted when unset): name the app that checks the tokens.",
    )
    token_ttl_seconds: int = Field(
        default=600, ge=10, le=86400, description="The token's lifetime (`exp - iat`)."
    )

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
