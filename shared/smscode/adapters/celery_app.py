"""The Celery app's configuration, shared by the publisher (HTTP side) and the worker."""

from __future__ import annotations

from celery import Celery

from smscode.adapters.redis_queue import restore_interval


def make_app(broker_url: str, visibility_timeout: int, queue: str = "celery") -> Celery:
    """A Celery app for smscode: late acks, no result backend, fail-fast broker connections."""
    app = Celery("smscode", broker=broker_url)
    app.conf.update(
        task_default_queue=queue,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_timeout=2,
        broker_connection_retry_on_startup=True,
        # Redis re-queues an unacknowledged task after this long; it must outlast the
        # longest task, retry countdowns included (a redelivery is harmless, only slower).
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # kombu sweeps for tasks of a dead worker only every interval x throttle seconds
            # (100 s by default): sweep as smscode's own Redis worker does.
            "unacked_restore_interval": restore_interval(visibility_timeout),
            "unacked_restore_throttle": 1,
            # A worker killed during a sweep leaves its mutex behind, stopping every sweep
            # until it expires (300 s by default): keep that within one visibility timeout.
            "unacked_mutex_expire": min(300, visibility_timeout),
            "socket_timeout": 2,
            "socket_connect_timeout": 2,
        },
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,  # the console provider prints to the real stdout
        worker_send_task_events=False,
    )
    return app
