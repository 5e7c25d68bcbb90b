"""The one place that picks the concrete provider and publisher from settings, per process."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from smscode import logs, metrics
from smscode.api import Api
from smscode.delivery import Deliverer
from smscode.providers import Provider
from smscode.publishers import Publisher
from smscode.sealing import Sealer
from smscode.service import CodeService
from smscode.settings import Settings, get_settings
from smscode.store import Store, connect


def _console(_: Settings) -> Provider:
    from smscode.providers.console import ConsoleProvider

    return ConsoleProvider()


def _ronglian(settings: Settings) -> Provider:
    from smscode.providers.ronglian import Credentials, RonglianProvider

    # Settings already refused a ronglian provider without these three.
    assert settings.ronglian_acc_id
    assert settings.ronglian_acc_token
    assert settings.ronglian_app_id
    creds = Credentials(
        acc_id=settings.ronglian_acc_id,
        acc_token=settings.ronglian_acc_token.get_secret_value(),
        app_id=settings.ronglian_app_id,
    )
    return RonglianProvider(
        creds,
        base_url=settings.ronglian_base_url,
        connect_timeout=settings.ronglian_connect_timeout_seconds,
        read_timeout=settings.ronglian_read_timeout_seconds,
        pool_size=settings.worker_concurrency,
    )


def _celery(settings: Settings) -> Publisher:
    from smscode.publishers.celery import CeleryPublisher

    return CeleryPublisher(
        settings.broker_url,
        settings.celery_visibility_timeout_seconds,
        settings.celery_queue,
        outbox=store(),
        recheck_seconds=settings.delivery_recheck_seconds,
    )


def _sqs(settings: Settings) -> Publisher:
    from smscode.publishers.sqs import SqsPublisher

    assert settings.sqs_queue_url  # Settings refused sqs without a queue URL
    return SqsPublisher(settings.sqs_queue_url)


def _inline(settings: Settings) -> Publisher:
    from smscode.publishers.inline import InlinePublisher

    return InlinePublisher(
        deliverer().deliver,
        retry_base=settings.delivery_retry_base_seconds,
        retry_cap=settings.delivery_retry_max_seconds,
    )


PROVIDERS: dict[str, Callable[[Settings], Provider]] = {"console": _console, "ronglian": _ronglian}
PUBLISHERS: dict[str, Callable[[Settings], Publisher]] = {
    "celery": _celery,
    "sqs": _sqs,
    "inline": _inline,
}


@cache
def _logging() -> None:
    logs.setup(get_settings().log_level)


@cache
def store() -> Store:
    """The process's Redis store (connections are made lazily, on first command)."""
    return Store(connect(get_settings().redis_url))


@cache
def sealer() -> Sealer:
    """The process's code sealer."""
    return Sealer(get_settings().code_secret.get_secret_value().encode())


@cache
def deliverer() -> Deliverer:
    """The process's delivery core, with the configured provider."""
    settings = get_settings()
    _logging()
    # The lease must outlast one provider call so a slow answer never overlaps a retry.
    lease = 2 * (settings.ronglian_connect_timeout_seconds + settings.ronglian_read_timeout_seconds)
    return Deliverer(
        store(),
        metrics.TimedProvider(PROVIDERS[settings.sms_provider](settings)),
        sealer(),
        lease_seconds=lease,
        recheck_seconds=settings.delivery_recheck_seconds,
    )


@cache
def service() -> CodeService:
    """The process's code service, with the configured publisher."""
    settings = get_settings()
    publisher = PUBLISHERS[settings.delivery_backend](settings)
    return CodeService(settings, store(), publisher, sealer())


@cache
def api() -> Api:
    """The HTTP API every adapter dispatches to."""
    _logging()
    return Api(service, lambda: store().ping())


def reset() -> None:
    """Forget the settings and everything built from them (for tests that change the env)."""
    get_settings.cache_clear()
    for built in (_logging, store, sealer, deliverer, service, api):
        built.cache_clear()
