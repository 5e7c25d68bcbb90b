"""The one place that builds concrete adapters from settings, once per process."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypedDict

from smscode.adapters import logs
from smscode.adapters.metrics import PrometheusMetrics, TimedProvider
from smscode.adapters.redis_circuits import RedisCircuits
from smscode.adapters.redis_client import connect
from smscode.adapters.redis_pumping import RedisPumping
from smscode.adapters.redis_store import RedisStore
from smscode.adapters.verification_store import RedisVerificationStore
from smscode.domain.policy import Limits, Policy
from smscode.domain.pumping import PumpingRule
from smscode.domain.sealing import Sealer
from smscode.service_layer.deliver import Deliverer
from smscode.service_layer.failover import Failover, Route
from smscode.service_layer.intake import receive
from smscode.service_layer.ports import Provider, Publisher, TokenSigner
from smscode.service_layer.pumping import Operator
from smscode.service_layer.send import Sender
from smscode.service_layer.verifications import Verifications
from smscode.service_layer.verify import Verifier
from smscode.settings import PROVIDER_REQUIRES, Settings, get_settings


def _console(_: Settings) -> Provider:
    from smscode.adapters.providers.console import ConsoleProvider

    return ConsoleProvider()


class _HttpOptions(TypedDict):
    connect_timeout: float
    read_timeout: float
    pool_size: int


def _http_options(settings: Settings, name: str) -> _HttpOptions:
    """An HTTP provider's timeouts (<NAME>_{CONNECT,READ}_TIMEOUT_SECONDS) and pool size."""
    return _HttpOptions(
        connect_timeout=getattr(settings, f"{name}_connect_timeout_seconds"),
        read_timeout=getattr(settings, f"{name}_read_timeout_seconds"),
        pool_size=settings.worker_concurrency,  # one connection per delivering thread
    )


def _required(settings: Settings, provider: str) -> list[Any]:
    """The values of PROVIDER_REQUIRES[provider]: Settings already refused it without them."""
    values = [getattr(settings, name) for name in PROVIDER_REQUIRES[provider]]
    assert all(values), provider
    return values


def _ronglian(settings: Settings) -> Provider:
    from smscode.adapters.providers.ronglian import Credentials, RonglianProvider

    acc_id, acc_token, app_id = _required(settings, "ronglian")
    creds = Credentials(acc_id=acc_id, acc_token=acc_token.get_secret_value(), app_id=app_id)
    return RonglianProvider(
        creds,
        template_id=settings.ronglian_template_id,
        base_url=settings.ronglian_base_url,
        **_http_options(settings, "ronglian"),
    )


def _aliyun(settings: Settings) -> Provider:
    from smscode.adapters.providers.aliyun import AliyunProvider, Credentials

    key_id, secret, sign_name, template_code = _required(settings, "aliyun")
    return AliyunProvider(
        Credentials(key_id=key_id, secret=secret.get_secret_value()),
        sign_name=sign_name,
        template_code=template_code,
        endpoint=settings.aliyun_endpoint,
        **_http_options(settings, "aliyun"),
    )


def _call_seconds(settings: Settings, name: str) -> float:
    """The longest one send through the provider can take: each HTTP call is over within its
    connect and read timeouts together (providers/transport.py), and Aliyun's lookup before
    a resend within two calls' time (aliyun.LOOKUP_CALLS)."""
    if name not in ("ronglian", "aliyun"):
        return 0.0
    options = _http_options(settings, name)
    each = options["connect_timeout"] + options["read_timeout"]
    return 3 * each if name == "aliyun" else each  # Aliyun: its lookup, then SendSms


def _celery(settings: Settings) -> Publisher:
    from smscode.adapters.publishers.celery import CeleryPublisher

    return CeleryPublisher(
        settings.broker_url,
        settings.celery_queue,
        outbox=store(),
        recheck_seconds=settings.delivery_recheck_seconds,
        # the broker is the code store itself: issue.lua queues each message as it accepts it
        same_redis=settings.broker_url == settings.redis_url,
    )


def _sqs(settings: Settings) -> Publisher:
    from smscode.adapters.publishers.sqs import SqsPublisher

    assert settings.sqs_queue_url  # Settings refused sqs without a queue URL
    return SqsPublisher(settings.sqs_queue_url)


def _pubsub(settings: Settings) -> Publisher:
    from smscode.adapters.publishers.pubsub import PubSubPublisher

    assert settings.pubsub_topic  # Settings refused pubsub without a topic
    return PubSubPublisher(settings.pubsub_topic)


def _inline(settings: Settings) -> Publisher:
    from smscode.adapters.publishers.inline import InlinePublisher

    return InlinePublisher(
        lambda payloads: receive(payloads, deliverer().deliver),
        retry_base=settings.delivery_retry_base_seconds,
        retry_cap=settings.delivery_retry_max_seconds,
    )


PROVIDERS: dict[str, Callable[[Settings], Provider]] = {
    "console": _console,
    "ronglian": _ronglian,
    "aliyun": _aliyun,
}
# Providers a repeated attempt cannot make send twice: Ronglian deduplicates on `reqId`, and
# the console only prints. Any other one is called through failover, even alone.
DEDUPLICATING = frozenset({"ronglian", "console"})
PUBLISHERS: dict[str, Callable[[Settings], Publisher]] = {
    "celery": _celery,
    "sqs": _sqs,
    "pubsub": _pubsub,
    "inline": _inline,
}


def policy(settings: Settings) -> Policy:
    """The use cases' rules, from the settings."""
    return Policy(
        code_length=settings.code_length,
        limits=Limits(
            code_ttl=settings.code_ttl_seconds,
            resend_interval=settings.resend_interval_seconds,
            phone_daily=settings.phone_daily_limit,
            ip_hourly=settings.ip_hourly_limit,
            prefix_hourly=settings.prefix_hourly_limit,
            global_minute=settings.global_minute_limit,
        ),
        max_verify_attempts=settings.max_verify_attempts,
        verify_failures_daily=settings.verify_failures_daily_limit,
        verify_client_hourly=settings.verify_ip_hourly_limit,
        allowed_prefixes=settings.send_allowed_prefixes,
        test_phones=settings.test_phones,
        pumping=PumpingRule(
            min_sends=settings.pumping_min_sends,
            min_conversion=settings.pumping_min_conversion,
            window_seconds=settings.pumping_window_seconds,
            block_seconds=settings.pumping_block_seconds,
            min_networks=settings.pumping_min_networks,
            allow=settings.pumping_allow,
        ),
    )


@cache
def logging() -> None:
    """JSON log lines at LOG_LEVEL, set up once per process."""
    logs.setup(get_settings().log_level)


@cache
def store() -> RedisStore:
    """The process's Redis store (connections are made lazily, on first command)."""
    return RedisStore(connect(get_settings().redis_url))


@cache
def sealer() -> Sealer:
    """The process's code sealer."""
    return Sealer(_secret())


def _secret() -> bytes:
    return get_settings().code_secret.get_secret_value().encode()


def _budget_seconds(settings: Settings) -> float:
    """One delivery attempt's time for its provider calls: one send through every listed
    provider in turn. Every call is over by then, and none starts after it."""
    return max(
        settings.ronglian_connect_timeout_seconds + settings.ronglian_read_timeout_seconds,
        sum(_call_seconds(settings, name) for name in settings.providers),
    )


def _lease_seconds(settings: Settings) -> float:
    """The delivery lease: twice the calls' budget, so the attempt's last call is over long
    before it can lapse (Redis round trips, a GC pause, a stalled host fit in the rest), a
    slow answer never overlaps a retry and a retry never switches provider under it."""
    return 2 * _budget_seconds(settings)


@cache
def circuits() -> RedisCircuits:
    """The providers' circuit breakers and the messages' provider pins, in the codes' Redis."""
    settings = get_settings()
    return RedisCircuits(
        store().client,
        threshold=settings.circuit_failure_threshold,
        window_seconds=settings.circuit_window_seconds,
        cooldown_seconds=settings.circuit_cooldown_seconds,
        probe_seconds=_lease_seconds(settings),
        pin_ttl_seconds=settings.code_ttl_seconds + 60,
    )


def _failover(settings: Settings) -> bool:
    """Whether sends go through failover: several providers, or one that does not deduplicate
    (Aliyun), whose pin and record lookup keep a lost answer from becoming a second SMS."""
    return len(settings.providers) > 1 or not DEDUPLICATING.issuperset(settings.providers)


def _provider(settings: Settings) -> Provider:
    """A lone provider that deduplicates, called directly; else failover
    (docs/concepts/failover.md)."""
    if not _failover(settings):
        return TimedProvider(PROVIDERS[settings.providers[0]](settings))
    routes = []
    for name in settings.providers:
        provider = PROVIDERS[name](settings)
        # A provider that does not deduplicate (Aliyun) can look in its records instead.
        find = getattr(provider, "find", None)
        routes.append(Route(name, TimedProvider(provider), find))
    return Failover(
        routes,
        circuits(),
        PrometheusMetrics(),
        lookup_delay_seconds=settings.aliyun_lookup_delay_seconds,
    )


def provider_health() -> list[dict[str, str | None]]:
    """Each listed provider and its circuit, for /healthz (None: no failover, no breaker)."""
    settings = get_settings()
    providers = settings.providers
    if not _failover(settings):
        return [{"name": providers[0], "circuit": None}]
    states = circuits().states(providers)
    return [{"name": name, "circuit": states[name]} for name in providers]


@cache
def deliverer() -> Deliverer:
    """The process's deliver use case, with the configured provider."""
    settings = get_settings()
    logging()
    return Deliverer(
        store(),
        _provider(settings),
        sealer(),
        PrometheusMetrics(),
        lease_seconds=_lease_seconds(settings),
        budget_seconds=_budget_seconds(settings),
        providers=settings.providers,
        pin_at_claim=not _failover(settings),  # failover pins each call itself
        recheck_seconds=settings.delivery_recheck_seconds,
    )


@cache
def sender() -> Sender:
    """The process's send use case, with the configured publisher."""
    settings = get_settings()
    publisher = PUBLISHERS[settings.delivery_backend](settings)
    return Sender(policy(settings), store(), publisher, sealer(), _secret(), PrometheusMetrics())


@cache
def verifier() -> Verifier:
    """The process's verify use case."""
    return Verifier(policy(get_settings()), store(), _secret(), PrometheusMetrics(), signer())


def signer() -> TokenSigner | None:
    """The token signer over TOKEN_SIGNING_KEY, or None when no key is set (no token)."""
    settings = get_settings()
    if settings.token_signing_key is None:
        return None
    from smscode.adapters.tokens import JwtSigner  # PyJWT only where tokens are signed
    from smscode.domain import signing_keys  # cryptography's key loaders, likewise

    return JwtSigner(
        signing_keys.private_key(settings.token_signing_key.get_secret_value()),
        issuer=settings.token_issuer,
        audience=settings.token_audience,
        ttl_seconds=settings.token_ttl_seconds,
    )


@cache
def jwks() -> dict[str, Any]:
    """The JWK Set: the signing key's public half, then TOKEN_PUBLISHED_KEYS (rotation:
    docs/concepts/tokens.md)."""
    from smscode.domain import signing_keys

    settings = get_settings()
    keys = [
        key
        for secret in (settings.token_signing_key, settings.token_published_keys)
        if secret is not None
        for key in signing_keys.public_keys(secret.get_secret_value())
    ]
    if not keys:
        return {"keys": []}
    from smscode.adapters.tokens import jwks as key_set

    return key_set(keys)


@cache
def verifications() -> Verifications:
    """The process's Twilio-compatible verifications, over the same send use case."""
    return Verifications(
        policy(get_settings()),
        sender(),
        RedisVerificationStore(store().client),
        _secret(),
        PrometheusMetrics(),
    )


@cache
def operator() -> Operator:
    """The process's admin use cases (pumping blocks, the dashboard's numbers)."""
    rule = policy(get_settings()).pumping
    return Operator(rule, RedisPumping(store().client), PrometheusMetrics())


def reset() -> None:
    """Forget the settings and everything built from them (for tests that change the env)."""
    get_settings.cache_clear()
    for built in (
        logging,
        store,
        sealer,
        circuits,
        deliverer,
        sender,
        verifier,
        jwks,
        verifications,
        operator,
    ):
        built.cache_clear()
