"""The Google Cloud shape on one machine: the SDK's Pub/Sub emulator, pushing to the function.

The emulator is the Google Cloud SDK's own (a Java server). It is started straight from
its script, without gcloud, in its own process group: the script `exec`s java, and
stopping the group leaves no java behind. Topics and subscriptions are made over its
REST API, so nothing here needs google-cloud-pubsub.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from smscode_dev.embedded import free_port
from smscode_dev.lifecycle import Startable

PROJECT = "smscode-local"
TOPIC = "smscode-deliveries"
SUBSCRIPTION = "smscode-deliver-push"
# The script inside an SDK folder; Debian's google-cloud-cli-pubsub-emulator puts it here.
SCRIPT = Path("platform/pubsub-emulator/bin/cloud-pubsub-emulator")
DEFAULT_SDK = Path("/usr/lib/google-cloud-sdk")
INSTALL_EMULATOR = (
    "the Pub/Sub emulator is not installed: install the Google Cloud SDK with its emulator "
    "(apt-get install google-cloud-cli-pubsub-emulator, or gcloud components install "
    "pubsub-emulator)"
)
INSTALL_JAVA = (
    "the Pub/Sub emulator needs Java, and none was found (JAVA_HOME or java on PATH): "
    "install a Java runtime (apt-get install default-jre-headless)"
)
# A push waits up to the ack deadline: well above one delivery, as deployed. Fewer attempts
# and shorter delays than docs/run/google-cloud.md advises, so that locally a dead
# letter shows up within seconds (the emulator pushes again about every second anyway).
ACK_DEADLINE_SECONDS = 60
MAX_DELIVERY_ATTEMPTS = 5
DEAD_LETTER_HOLD = "-dlq-hold"  # suffix of the pull subscription keeping dead letters


class ToolMissing(RuntimeError):
    """The emulator or Java is not on this machine; the message says what to install."""


def sdk_roots() -> list[Path]:
    """Where a Google Cloud SDK may be: beside `gcloud` on PATH, then Debian's folder."""
    gcloud = shutil.which("gcloud")
    roots = [Path(gcloud).resolve().parents[1]] if gcloud else []
    return [*roots, DEFAULT_SDK]


def emulator_script(roots: Iterable[Path] | None = None) -> Path:
    """The emulator's start script in the first SDK that has one.

    Raises:
        ToolMissing: no SDK with the emulator.
    """
    for root in sdk_roots() if roots is None else roots:
        if (root / SCRIPT).is_file():
            return root / SCRIPT
    raise ToolMissing(INSTALL_EMULATOR)


def require_java(env: Mapping[str, str] = os.environ) -> None:
    """Raise ToolMissing unless the emulator's script will find java (as it looks for it)."""
    home = env.get("JAVA_HOME")
    found = os.access(Path(home) / "bin" / "java", os.X_OK) if home else None
    if not found and not shutil.which("java", path=env.get("PATH", os.defpath)):
        raise ToolMissing(INSTALL_JAVA)


class PubSubEmulator(Startable):
    """The SDK's Pub/Sub emulator on a free loopback port, state in memory only."""

    def __init__(self, project: str = PROJECT, port: int = 0) -> None:
        self.project = project
        self.port = port or free_port()
        self.log = Path(tempfile.gettempdir()) / f"smscode-pubsub-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        """host:port, as PUBSUB_EMULATOR_HOST wants it."""
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> Self:
        """Start the emulator and wait until it answers (about 1.5 s).

        Raises:
            ToolMissing: no emulator or no Java here.
        """
        script = emulator_script()
        require_java()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(  # noqa: S603  (the SDK's script, fixed arguments)
                [str(script), "--host=127.0.0.1", f"--port={self.port}"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: Ctrl-C reaches `dev`, which stops it
            )
        deadline = time.monotonic() + timeout
        try:
            while not self._answers():
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the Pub/Sub emulator did not start; see {self.log}")
                time.sleep(0.1)
        except BaseException:  # Ctrl-C while it starts too: never leave a java behind
            self.stop(keep_log=True)
            raise
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/", timeout=0.5) as answer:
                return bool(answer.read().strip() == b"Ok")
        except OSError:
            return False

    def stop(self, *, keep_log: bool = False) -> None:
        """Stop the emulator's whole process group (the script's java), SIGKILL after 5 s."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None
        if not keep_log:
            self.log.unlink(missing_ok=True)

    def path(self, kind: str, name: str) -> str:
        """The full resource name, e.g. projects/smscode-local/topics/smscode-deliveries."""
        return f"projects/{self.project}/{kind}/{name}"

    def call(self, method: str, resource: str, body: Mapping[str, Any] | None = None) -> Any:
        """One REST call on `resource` (a full resource name, with any `:verb`); the JSON answer."""
        request = urllib.request.Request(
            f"http://{self.host}/v1/{resource}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
            return json.loads(answer.read() or b"{}")

    def create_topic(self, name: str) -> str:
        """Create a topic; its full name."""
        topic = self.path("topics", name)
        self.call("PUT", topic)
        return topic

    def create_subscription(self, name: str, topic: str, **config: Any) -> str:
        """Create a subscription on `topic` (pull unless `pushConfig` is given); its full name."""
        subscription = self.path("subscriptions", name)
        self.call("PUT", subscription, {"topic": topic, **config})
        return subscription

    def pull(self, subscription: str, max_messages: int = 100) -> list[dict[str, Any]]:
        """The messages waiting on a pull subscription (`receivedMessages[].message`), acked."""
        answer = self.call(
            "POST",
            f"{subscription}:pull",
            {"maxMessages": max_messages, "returnImmediately": True},
        )
        received = answer.get("receivedMessages", [])
        if received:
            ack = {"ackIds": [item["ackId"] for item in received]}
            self.call("POST", f"{subscription}:acknowledge", ack)
        return [item["message"] for item in received]


def push_endpoint(function_url: str, topic: str) -> str:
    """The push URL for a CloudEvent function: functions-framework turns a raw push into a
    `messagePublished` CloudEvent and takes its `source` topic from the URL's path."""
    return f"{function_url.rstrip('/')}/{topic}"


def delivery_subscription(
    emulator: PubSubEmulator, topic: str, function_url: str, name: str = SUBSCRIPTION
) -> str:
    """A push subscription into the delivery function, as Eventarc makes one (with --retry),
    plus the dead-letter topic docs/run/google-cloud.md asks for and a subscription keeping
    what it gets."""
    dead_letters = emulator.create_topic(f"{topic.rsplit('/', 1)[1]}-dlq")
    emulator.create_subscription(f"{name}{DEAD_LETTER_HOLD}", dead_letters)
    return emulator.create_subscription(
        name,
        topic,
        pushConfig={"pushEndpoint": push_endpoint(function_url, topic)},
        ackDeadlineSeconds=ACK_DEADLINE_SECONDS,
        retryPolicy={"minimumBackoff": "1s", "maximumBackoff": "10s"},
        deadLetterPolicy={
            "deadLetterTopic": dead_letters,
            "maxDeliveryAttempts": MAX_DELIVERY_ATTEMPTS,
        },
    )


def function_argv(port: int, source: str | None = None) -> list[str]:
    """The delivery function under functions-framework, as Cloud Run functions runs it.

    `source` defaults to the module defining `deliver` (functions/deliver_sms/main.py
    re-exports it, and is not installed with the package).
    """
    if source is None:
        from smscode.entrypoints import pubsub

        source = str(pubsub.__file__)
    return [
        sys.executable, "-m", "functions_framework", "--target", "deliver",
        "--signature-type", "cloudevent", "--source", source,
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip


class LocalGcp:
    """The emulator with the delivery topic, and a push subscription to the function's port."""

    def __init__(self) -> None:
        self.emulator = PubSubEmulator()
        self.function_port = free_port()
        self.topic = ""
        self.subscription = ""

    @property
    def function_url(self) -> str:
        """Where the delivery function listens."""
        return f"http://127.0.0.1:{self.function_port}"

    @property
    def env(self) -> dict[str, str]:
        """What `smscode serve` needs to publish here, as the deployed HTTP function would."""
        return {
            "DELIVERY_BACKEND": "pubsub",
            "PUBSUB_TOPIC": self.topic,
            "PUBSUB_EMULATOR_HOST": self.emulator.host,
        }

    def start(self) -> LocalGcp:
        """Start the emulator and create the topic and the push subscription.

        The emulator retries a push it could not make, so the function may come up later.

        Raises:
            ToolMissing: no emulator or no Java here.
        """
        self.emulator.start()
        try:
            self.topic = self.emulator.create_topic(TOPIC)
            self.subscription = delivery_subscription(self.emulator, self.topic, self.function_url)
        except BaseException:
            self.emulator.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the emulator."""
        self.emulator.stop()
