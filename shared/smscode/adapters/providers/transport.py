"""The providers' HTTP client: urllib3's connections, kept alive, each call under one deadline.

A provider call must end by its deadline whatever the network or the server does, so that
it never outlives the delivery lease (docs/concepts/delivery.md): name resolution runs in a helper
thread that is waited for at most the time left; connect, TLS and every socket operation get
the time left as their timeout; and an answer trickled more slowly than that (each byte
inside a read timeout, the whole past the deadline) is cut by a watchdog that shuts the
socket down at the deadline. An answer is read up to `max_answer_bytes`, no more.

urllib3 writes the request (http.client refuses control characters in it, and so do we
before a connection is even opened) and http.client reads the answer. Every failure is
raised as urllib3's error for it, which tells a request that surely never left
(NameResolutionError, NewConnectionError, ConnectTimeoutError: nothing was sent) from one
whose answer was lost (ReadTimeoutError, ProtocolError: it may have been sent), so
`ronglian.classify_error` maps each to NotSent or MaybeSent. Nothing is ever retried here:
a retry belongs to the delivery core, with its key.

Why not pycurl (docs/adr/0011-providers-http-client.md): its wheels on PyPI need glibc
2.28, the Lambda python3.11 runtime (Amazon Linux 2) has 2.26; and libcurl silently resends
a POST whose answer was lost on a reused connection unless the body comes from a read
callback. It costs ~45 µs of CPU per call against ~150 µs here.
"""

from __future__ import annotations

import heapq
import http.client
import ipaddress
import itertools
import math
import os
import re
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import suppress

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HeaderParsingError,
    HTTPError,
    NameResolutionError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)
from urllib3.util import parse_url
from urllib3.util.ssl_ import create_urllib3_context
from urllib3.util.ssl_match_hostname import CertificateError

# What may not appear in a header, or (spaces too) in the request target, as http.client
# refuses them: checked before a connection is opened, so a bad request never reaches the wire.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_IN_TARGET = re.compile(r"[\x00-\x20\x7f]")
MAX_ANSWER_BYTES = 64 * 1024  # both providers answer well under 4 KiB


class _Watch:
    """One call's socket, shut down by the watchdog if the call is still running at its deadline."""

    __slots__ = ("armed", "fired", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.armed = True
        self.fired = False


class _Watchdog:
    """One thread per process that ends calls at their deadlines.

    A socket timeout bounds each read, not the answer: a server sending a byte just inside
    it keeps a call alive for ever. At the deadline the watchdog shuts the socket down; the
    blocked read then returns and the call fails as an answer lost. Calls disarm their watch
    when done; the heap keeps finished ones until their deadline passes, and the thread wakes
    at most every `_SLACK` seconds while calls run.
    """

    _SLACK = 0.05

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:  # a forked child has the heap but not the thread
        self._lock = threading.Condition()
        self._heap, self._thread = [], None

    def arm(self, deadline: float, sock: socket.socket) -> _Watch:
        """Watch `sock` until `deadline` (time.monotonic()) or until disarmed."""
        watch = _Watch(sock)
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deadlines", daemon=True)
                self._thread.start()
            wake = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, next(self._order), watch))
            if wake:
                self._lock.notify()
        return watch

    def disarm(self, watch: _Watch) -> bool:
        """Stop watching; whether the deadline had already cut the call."""
        with self._lock:
            watch.armed = False
            return watch.fired

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    watch = heapq.heappop(self._heap)[2]
                    if watch.armed:
                        watch.fired = True
                        with suppress(OSError):  # the plain socket's: no TLS state touched
                            socket.socket.shutdown(watch.sock, socket.SHUT_RDWR)
                wait = self._heap[0][0] - now + self._SLACK if self._heap else None
                self._lock.wait(wait)


_WATCHDOG = _Watchdog()


def _new_resolver() -> ThreadPoolExecutor:
    """Where getaddrinfo, which cannot be timed out, runs; a call waits for it at most the
    time left (a lookup that outlives its call finishes in the background, harmlessly)."""
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="resolve")


_resolver = _new_resolver()


def _renew_resolver() -> None:  # a forked child has the pool but not its threads
    global _resolver
    _resolver = _new_resolver()


os.register_at_fork(after_in_child=_renew_resolver)


def _close_all(idle: deque[HTTPConnection]) -> None:
    while idle:
        idle.pop().close()


class Origin:
    """POSTs to one scheme://host:port over keep-alive connections; safe to share between threads.

    `post` answers (status, body) or raises urllib3's errors (see the module's docstring).
    """

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool_size: int,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        url = parse_url(self.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = url.scheme == "https"
        self._host = url.host.strip("[]")
        self._port = url.port or (443 if self._https else 80)
        self._prefix = (url.path or "").rstrip("/")
        self.call_seconds = connect_timeout + read_timeout  # the most one call may take
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._pool_size = pool_size
        self._max_answer = max_answer_bytes
        self._context = self._tls_context() if self._https else None
        self._idle: deque[HTTPConnection] = deque()  # append and pop are atomic
        # Closed when the origin is dropped, as urllib3 closes a dropped pool's connections.
        weakref.finalize(self, _close_all, self._idle)
        host = f"{url.host}:{url.port}" if url.port else url.host
        # As urllib3's pool sent them; each request adds its own headers and Content-Length.
        self._common = {"Host": host, "Accept-Encoding": "identity", "User-Agent": "smscode"}
        if _NOT_IN_TARGET.search(self._prefix + host):
            raise ValueError(f"control characters in {base_url!r}")

    @staticmethod
    def _tls_context() -> ssl.SSLContext:
        """urllib3's defaults (certificates and host names checked), the system's CAs, once."""
        context = create_urllib3_context()
        context.load_default_certs()
        return context

    def post(
        self,
        url: str,
        headers: Mapping[str, str],
        body: bytes = b"",
        *,
        deadline: float = math.inf,
    ) -> tuple[int, bytes]:
        """POST `body` to `url` (this origin's base URL and more); the answer's status and body.

        The call is over by `deadline` (time.monotonic()) or after the connect and read
        timeouts together, whichever comes first, and it does not start when no time is
        left; each wait for the server (connect, TLS, every read) also ends at its timeout.
        """
        if not url.startswith(self.base_url):
            raise ValueError("a URL of another origin")
        target = self._prefix + url[len(self.base_url) :] or "/"
        if _NOT_IN_TARGET.search(target) or _CONTROL.search("".join([*headers, *headers.values()])):
            raise ValueError("control characters in the request line or a header")
        end = min(deadline, time.monotonic() + self.call_seconds)
        self._left(end, "start the call")
        conn = self._checkout(url, end)
        # each socket operation's timeout from here on; the watchdog ends the call at `end`
        conn.timeout = max(min(self._read_timeout, end - time.monotonic()), 0.001)
        watch = _WATCHDOG.arm(end, conn.sock)
        try:
            status, payload = self._exchange(conn, url, target, self._common | dict(headers), body)
        except BaseException as error:
            conn.close()
            if _WATCHDOG.disarm(watch):
                raise self._timeout(url, "the call's deadline passed") from error
            raise
        if _WATCHDOG.disarm(watch) or conn.sock is None or len(self._idle) >= self._pool_size:
            conn.close()  # cut at its deadline, or closed by the answer (Connection: close)
        else:
            self._idle.append(conn)
        return status, payload

    def _checkout(self, url: str, end: float) -> HTTPConnection:
        """An idle connection the server has not closed meanwhile, or a new one by `end`."""
        while self._idle:
            try:
                conn = self._idle.pop()
            except IndexError:  # another thread took the last one
                break
            if conn.is_connected:  # no EOF or stray bytes waiting: as urllib3's pool checks
                return conn
            conn.close()
        return self._connect(url, end)

    def _left(self, end: float, what: str) -> float:
        left = end - time.monotonic()
        if left <= 0:
            raise ConnectTimeoutError(f"no time left to {what} (nothing was sent)")
        return left

    def _addresses(self, end: float) -> list[str]:
        """The host's addresses, looked up in at most the time left."""
        with suppress(ValueError):
            return [str(ipaddress.ip_address(self._host))]
        lookup = _resolver.submit(socket.getaddrinfo, self._host, self._port, 0, socket.SOCK_STREAM)
        try:
            found = lookup.result(timeout=self._left(end, "resolve the host"))
        except FutureTimeout:
            raise ConnectTimeoutError(f"resolving {self._host} timed out") from None
        except OSError as error:
            raise NameResolutionError(self._host, None, error) from error  # type: ignore[arg-type]
        return list(dict.fromkeys(str(info[4][0]) for info in found))

    def _connect(self, url: str, end: float) -> HTTPConnection:
        """Open a connection (and its TLS) to the first address that answers, by `end`.

        Each address gets the connect timeout (or what is left). A TLS failure is wrapped in
        SSLError as urllib3's pool wraps it.
        """
        error: Exception = NewConnectionError(None, "no address")  # type: ignore[arg-type]
        for address in self._addresses(end):
            timeout = min(self._connect_timeout, self._left(end, "connect"))
            if self._https:
                conn: HTTPConnection = HTTPSConnection(
                    address, self._port, timeout=timeout, server_hostname=self._host,
                    ssl_context=self._context,
                )  # fmt: skip
            else:
                conn = HTTPConnection(address, self._port, timeout=timeout)
            try:
                conn.connect()
                return conn
            except (NewConnectionError, ConnectTimeoutError) as failed:
                conn.close()
                error = failed  # the next address, if any and in time
            except (ssl.SSLError, CertificateError) as failed:
                conn.close()
                raise SSLError(failed) from failed
            except TimeoutError as failed:  # the TLS handshake outlasted the timeout
                conn.close()
                raise self._timeout(url, "the TLS handshake timed out") from failed
            except OSError as failed:  # reset during the handshake
                conn.close()
                raise ProtocolError("Connection aborted.", failed) from failed
        raise error

    def _exchange(
        self, conn: HTTPConnection, url: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, bytes]:
        """Write the request and read the whole answer, in the time left (the watchdog cuts
        the rest)."""
        try:
            conn.request(
                "POST", target, body=body, headers=headers, preload_content=False,
                decode_content=False,
            )  # fmt: skip
            answer = conn.getresponse()
            # urllib3 only logs an answer whose headers do not parse (cut mid-header): refuse it
            parsed = answer._original_response.msg  # type: ignore[union-attr]
            if parsed.defects:
                raise HeaderParsingError(parsed.defects, None)
            payload = b""
            while chunk := answer.read(self._max_answer + 1 - len(payload)):  # to the end
                payload += chunk
                if len(payload) > self._max_answer:
                    raise ProtocolError(f"an answer larger than {self._max_answer} bytes")
        except HeaderParsingError as error:
            raise ProtocolError("Connection aborted.", error) from error
        except HTTPError:  # urllib3's own, from reading the body
            raise
        except (ssl.SSLError, CertificateError) as error:
            raise SSLError(error) from error
        except TimeoutError as error:
            raise self._timeout(url, "read timed out") from error
        except (http.client.HTTPException, OSError) as error:
            raise ProtocolError("Connection aborted.", error) from error
        return answer.status, payload

    @staticmethod
    def _timeout(url: str, why: str) -> ReadTimeoutError:
        return ReadTimeoutError(None, url, why)  # type: ignore[arg-type]  # no urllib3 pool
