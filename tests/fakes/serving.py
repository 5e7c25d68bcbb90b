"""What the fake providers share: serving from a daemon thread, and stopping for real.

A stopped fake refuses connections (open ones are cut, handler threads joined), so a test
can take a provider down mid-run; a restart binds the same port again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from types import TracebackType
from typing import Self, TypeVar

T = TypeVar("T")


def shutdown(sock: socket.socket) -> None:
    """Shut both directions of a socket down (FIN, no RST), ignoring errors."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class ServedFake:
    """A fake's lifecycle; its handler calls `_register`, `_unregister` and `_sleep`."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified when the fake sends one
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}

    def _bind(self) -> ThreadingHTTPServer:
        """The fake's HTTP server bound to (host, port)."""
        raise NotImplementedError

    def _url(self) -> str:
        """Such as "http://127.0.0.1:40123" (only after start())."""
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> Self:
        """Bind (to `port`, 0 for any free one) and serve from a daemon thread; return self."""
        if self._server is not None:
            raise RuntimeError(f"{type(self).__name__} is already started")
        self._stopping.clear()
        server = self._bind()
        self.port = int(server.server_address[1])  # a restart binds the same port again
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}-{self.port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut open connections and wait (bounded) for handler threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = dict(self._conns)
        for conn in conns:
            shutdown(conn)
        deadline = time.monotonic() + timeout
        for worker in [*conns.values(), *([thread] if thread else [])]:
            worker.join(max(0.0, deadline - time.monotonic()))
        self._server = self._thread = None

    def __enter__(self) -> Self:
        """Start (if needed) and return self."""
        return self if self._server is not None else self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server."""
        self.stop()

    def _wait_for(self, sent: list[T], count: int, timeout: float) -> list[T]:
        """Block until `sent` (guarded by the lock) holds `count`; raise TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(sent) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"only {len(sent)} of {count} SMS within {timeout}s")
                self._changed.wait(left)
            return list(sent)

    def _register(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns[conn] = threading.current_thread()
            stopping = self._stopping.is_set()
        if stopping:
            shutdown(conn)

    def _unregister(self, conn: socket.socket) -> None:
        with self._lock:
            self._conns.pop(conn, None)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless the fake stops first; True if the full time elapsed."""
        return not self._stopping.wait(seconds)
