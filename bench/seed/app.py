"""The seed this project replaces, rebuilt from its text as the bench's reference.

The tutorial's view (Django + django-redis + Celery): draw a code, `get_redis_connection`,
two `setex` (the code and the resend flag), `send_message.delay(mobile, code)`, answer
JSON. No worker consumes its queue during the bench (as in the seed's own measurement).
Served by gunicorn with the same workers and threads as `smscode serve`:
`gunicorn bench.seed.app:application`. REDIS_URL and CELERY_BROKER_URL as for smscode.
"""

from __future__ import annotations

import json
import os
import random

import django
from celery import Celery
from django.conf import settings

settings.configure(
    DEBUG=False,
    SECRET_KEY="bench-seed-not-secret",  # noqa: S106  (a throwaway reference server)
    ALLOWED_HOSTS=["*"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=[],
    CACHES={
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "verify_codes": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": os.environ["REDIS_URL"],
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.DefaultClient"},
        },
    },
)
django.setup()

from django.http import HttpRequest, JsonResponse  # noqa: E402  (after settings.configure)
from django.urls import path  # noqa: E402
from django.views import View  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402
from django_redis import get_redis_connection  # noqa: E402

celery_app = Celery("seed", broker=os.environ["CELERY_BROKER_URL"])
celery_app.conf.task_default_queue = "seed-bench"  # nobody consumes it; flushed afterwards


@celery_app.task(name="celery_tasks.sms.tasks.send_message")  # type: ignore[untyped-decorator]
def send_message(mobile: str, code: str) -> None:
    """The seed's task (its body never runs here: no worker)."""


class SMSCodeView(View):  # type: ignore[misc]  # Django ships no types
    """The seed's view, its steps unchanged; the phone comes from the body as in /codes."""

    def post(self, request: HttpRequest) -> JsonResponse:
        """Issue a code: two SETEX and a Celery `delay`."""
        data = json.loads(request.body or b"{}")
        mobile = str(data.get("phone") or data.get("mobile"))
        sms_code = "%06d" % random.randint(0, 999999)  # noqa: UP031  (the seed's own line)
        redis_conn = get_redis_connection("verify_codes")
        redis_conn.setex("sms_%s" % mobile, 300, sms_code)  # noqa: UP031
        redis_conn.setex("send_flag_%s" % mobile, 60, 1)  # noqa: UP031
        send_message.delay(mobile, sms_code)
        return JsonResponse({"code": "0", "errmsg": "OK"})


urlpatterns = [
    path("codes", csrf_exempt(SMSCodeView.as_view())),
    path("", lambda _: JsonResponse({"status": "ok"})),  # the bench's readiness probe
]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
