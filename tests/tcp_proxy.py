"""A TCP proxy for tests that can hold one reply back, as a slow network or server would."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Self


class HoldingProxy:
    """Forwards every connection to `upstream`; `hold_next` delays one reply.

    After a client writes bytes containing the armed pattern, the next reply on that same
    connection waits `seconds` before it goes on (by then the client may have given up and
    closed it). Only the first such reply is held; later ones pass at once.
    """

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._pattern: bytes | None = None
        self._seconds = 0.0
        self.held = threading.Event()  # set once the armed reply has been held back
        self._sockets: list[socket.socket] = []
        self._closed = False

    def start(self) -> Self:
        """Accept connections on a thread of its own."""
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection."""
        self._closed = True
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def hold_next(self, pattern: bytes, seconds: float) -> None:
        """Hold the reply to the next command that contains `pattern` for `seconds`."""
        with self._lock:
            self._pattern, self._seconds = pattern, seconds
            self.held.clear()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._upstream)
            with self._lock:
                self._sockets += [client, upstream]
            armed = threading.Event()  # this connection's next reply is to be held
            threading.Thread(
                target=self._requests, args=(client, upstream, armed), daemon=True
            ).start()
            threading.Thread(
                target=self._replies, args=(upstream, client, armed), daemon=True
            ).start()

    def _requests(
        self, client: socket.socket, upstream: socket.socket, armed: threading.Event
    ) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    if self._pattern is not None and self._pattern in data:
                        self._pattern = None
                        armed.set()  # before the command goes on, so its reply is caught
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def _replies(
        self, upstream: socket.socket, client: socket.socket, armed: threading.Event
    ) -> None:
        try:
            while data := upstream.recv(65536):
                if armed.is_set():
                    armed.clear()
                    time.sleep(self._seconds)
                    self.held.set()
                client.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
