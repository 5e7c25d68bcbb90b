"""The providers' HTTP client: one origin, keep-alive connections, answers framed by httptools.

Why not urllib3's pool, which this replaced: one provider call through it cost ~230 µs of
CPU against ~55 µs here (bench/README "Delivery, third pass"), most of a delivery's CPU.
http.client parses every answer's headers through `email.parser`, and urllib3 adds its
header dicts, Timeout objects and pool bookkeeping per call; a provider call needs one
POST and a small answer. The answer is framed by httptools (llhttp, the parser uvicorn
runs); connections are still opened by urllib3 (its TLS context, certificate and host
name checks, TCP_NODELAY), and every failure is raised as the urllib3 error urllib3's pool
raised for it, so `ronglian.classify_error` tells a request that never left (NotSent) from
one whose answer was lost (MaybeSent) exactly as before.
"""

from __future__ import annotations

import re
import ssl
import weakref
from collections import deque
from collections.abc import Mapping
from contextlib import suppress

import httptools
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import ProtocolError, ReadTimeoutError, SSLError
from urllib3.util import parse_url
from urllib3.util.ssl_match_hostname import CertificateError

# What may not appear in a header, or (spaces too) in the request target, as http.client
# refuses them: no header or request smuggling through a configured id or an odd value.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NOT_IN_TARGET = re.compile(r"[\x00-\x20\x7f]")
_RECEIVE = 65536


class _Answer:
    """httptools' callbacks for one response: its body, and whether it ended."""

    __slots__ = ("body", "complete", "framed", "headed", "keep_alive", "parser")

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.headed = False  # the status line and headers are in
        self.framed = False  # Content-Length or chunked: else the body ends when the socket does
        self.complete = False
        self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, _: bytes) -> None:
        if name.lower() in (b"content-length", b"transfer-encoding"):
            self.framed = True

    def on_headers_complete(self) -> None:
        self.headed = True

    def on_body(self, chunk: bytes) -> None:
        self.body.append(chunk)

    def on_message_complete(self) -> None:
        if self.parser.get_status_code() < 200:  # 100 Continue and the like: the answer follows
            self.body.clear()
            self.headed = self.framed = False
        else:
            self.complete = True
            self.keep_alive = self.parser.should_keep_alive()


def _close_all(idle: deque[HTTPConnection]) -> None:
    while idle:
        idle.pop().close()


class Origin:
    """POSTs to one scheme://host:port over keep-alive connections; safe to share between threads.

    `post` answers (status, body) or raises urllib3's errors: NameResolutionError,
    NewConnectionError or ConnectTimeoutError when no connection could be opened (nothing
    was sent); SSLError for TLS; ReadTimeoutError or ProtocolError once the request may
    have gone out. Nothing is retried here: a retry belongs to the delivery core.
    """

    def __init__(
        self, base_url: str, *, connect_timeout: float, read_timeout: float, pool_size: int
    ) -> None:
        self.base_url = base_url.rstrip("/")
        url = parse_url(self.base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = url.scheme == "https"
        self._host = url.host
        self._port = url.port or (443 if self._https else 80)
        self._prefix = (url.path or "").rstrip("/")
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._pool_size = pool_size
        self._idle: deque[HTTPConnection] = deque()  # append and pop are atomic
        # Closed when the origin is dropped, as urllib3 closes a dropped pool's connections.
        weakref.finalize(self, _close_all, self._idle)
        host = f"{url.host}:{url.port}" if url.port else url.host
        # As urllib3 sent them; each request adds its own headers and Content-Length.
        self._common = f"Host: {host}\r\nAccept-Encoding: identity\r\nUser-Agent: smscode\r\n"
        if _NOT_IN_TARGET.search(self._prefix + host):
            raise ValueError(f"control characters in {base_url!r}")

    def post(self, url: str, headers: Mapping[str, str], body: bytes = b"") -> tuple[int, bytes]:
        """POST `body` to `url` (this origin's base URL and more); the answer's status and body."""
        if not url.startswith(self.base_url):
            raise ValueError("a URL of another origin")
        target = self._prefix + url[len(self.base_url) :] or "/"
        if _NOT_IN_TARGET.search(target) or _CONTROL.search("".join([*headers, *headers.values()])):
            raise ValueError("control characters in the request line or a header")
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        request = (
            f"POST {target} HTTP/1.1\r\n{self._common}{lines}Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1") + body
        conn = self._checkout(url)
        try:
            status, payload, reusable = self._exchange(conn, url, request)
        except BaseException:
            conn.close()
            raise
        if reusable and len(self._idle) < self._pool_size:
            self._idle.append(conn)
        else:
            conn.close()
        return status, payload

    def _checkout(self, url: str) -> HTTPConnection:
        """An idle connection the server has not closed meanwhile, or a new one."""
        while self._idle:
            try:
                conn = self._idle.pop()
            except IndexError:  # another thread took the last one
                break
            if conn.is_connected:  # no EOF or stray bytes waiting: as urllib3 checks
                return conn
            conn.close()
        return self._connect(url)

    def _connect(self, url: str) -> HTTPConnection:
        """Open a connection (and its TLS) with the connect timeout, as urllib3's pool did.

        A refused, unresolvable or timed-out connection raises from urllib3 itself; a TLS
        failure is wrapped in SSLError as its pool wrapped it.
        """
        kind = HTTPSConnection if self._https else HTTPConnection
        conn = kind(self._host, self._port, timeout=self._connect_timeout)
        try:
            conn.connect()
        except (ssl.SSLError, CertificateError) as error:
            conn.close()
            raise SSLError(error) from error
        except TimeoutError as error:  # the TLS handshake outlasted the timeout
            conn.close()
            raise self._timeout(url) from error
        except OSError as error:  # reset during the handshake
            conn.close()
            raise ProtocolError("Connection aborted.", error) from error
        return conn

    def _exchange(self, conn: HTTPConnection, url: str, request: bytes) -> tuple[int, bytes, bool]:
        """Write the request, read the answer: (status, body, whether the connection can serve
        another request)."""
        sock = conn.sock
        assert sock is not None  # connected by _checkout
        sock.settimeout(self._read_timeout)
        answer = _Answer()
        try:
            # A server may answer and close before it has read the whole request: read it.
            with suppress(BrokenPipeError, ConnectionResetError):
                sock.sendall(request)
            while not answer.complete:
                data = sock.recv(_RECEIVE)
                if not data:
                    if not answer.headed or answer.framed:
                        raise ProtocolError("Connection aborted.", ConnectionError("no answer"))
                    break  # a body that ends with the connection
                answer.parser.feed_data(data)
        except httptools.HttpParserError as error:
            raise ProtocolError("Connection aborted.", error) from error
        except (ssl.SSLError, CertificateError) as error:
            raise SSLError(error) from error
        except TimeoutError as error:
            raise self._timeout(url) from error
        except OSError as error:
            raise ProtocolError("Connection aborted.", error) from error
        return answer.parser.get_status_code(), b"".join(answer.body), answer.keep_alive

    def _timeout(self, url: str) -> ReadTimeoutError:
        message = f"Read timed out. (read timeout={self._read_timeout})"
        return ReadTimeoutError(None, url, message)  # type: ignore[arg-type]  # no urllib3 pool
