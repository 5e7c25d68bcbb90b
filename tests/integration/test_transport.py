"""The providers' HTTP client against a server that answers raw bytes, as HTTP allows them.

The fakes answer as Ronglian and Aliyun do (Content-Length, keep-alive); HTTP also allows
chunked bodies, bodies that end with the connection, interim 1xx answers and a server that
closes an idle connection. Each must come out as urllib3's pool made it come out.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator

import pytest
from urllib3.exceptions import NewConnectionError, ProtocolError, ReadTimeoutError

from smscode.adapters.providers.transport import Origin
from smscode_dev.embedded import free_port

Answer = Callable[[socket.socket], None]  # writes one answer (or not) on the connection


class RawServer:
    """Reads each request on a connection and lets the next scripted answer write back."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.answers: list[Answer] = []
        self.connections = 0
        self.requests: list[bytes] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                head, _, data = data.partition(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                while len(data) < length:
                    data += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + data[:length])
                data = data[length:]
                self.answers.pop(0)(conn)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def server() -> Iterator[RawServer]:
    served = RawServer()
    yield served
    served.close()


def origin(url: str) -> Origin:
    return Origin(url, connect_timeout=0.5, read_timeout=0.5, pool_size=4)


def raw(payload: bytes, *, close: bool = False) -> Answer:
    def answer(conn: socket.socket) -> None:
        conn.sendall(payload)
        if close:
            conn.shutdown(socket.SHUT_RDWR)

    return answer


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_a_keep_alive_connection_serves_the_next_request(server: RawServer) -> None:
    client = origin(server.url)
    server.answers = [raw(OK), raw(OK)]
    assert client.post(f"{server.url}/a", {"X-One": "1"}, b"body") == (200, b"ok")
    assert client.post(f"{server.url}/b", {}) == (200, b"ok")
    assert server.connections == 1
    first = server.requests[0]
    assert first.startswith(b"POST /a HTTP/1.1\r\n")
    assert b"\r\nX-One: 1\r\n" in first
    assert b"\r\nContent-Length: 4\r\n" in first
    assert first.endswith(b"\r\n\r\nbody")


def test_a_chunked_answer_is_joined(server: RawServer) -> None:
    chunks = b'3\r\n{"a\r\n2\r\n"}\r\n0\r\n\r\n'
    server.answers = [raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)]
    assert origin(server.url).post(f"{server.url}/", {}) == (200, b'{"a"}')


def test_a_body_that_ends_with_the_connection_is_whole_and_the_connection_not_kept(
    server: RawServer,
) -> None:
    client = origin(server.url)
    server.answers = [raw(b"HTTP/1.1 200 OK\r\n\r\nuntil close", close=True), raw(OK)]
    assert client.post(f"{server.url}/", {}) == (200, b"until close")
    assert client.post(f"{server.url}/", {}) == (200, b"ok")
    assert server.connections == 2


def test_connection_close_is_honoured(server: RawServer) -> None:
    client = origin(server.url)
    server.answers = [raw(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")]
    server.answers.append(raw(OK))
    assert client.post(f"{server.url}/", {}) == (200, b"ok")
    assert client.post(f"{server.url}/", {}) == (200, b"ok")
    assert server.connections == 2


def test_an_interim_answer_is_skipped(server: RawServer) -> None:
    server.answers = [raw(b"HTTP/1.1 100 Continue\r\n\r\n" + OK)]
    assert origin(server.url).post(f"{server.url}/", {}) == (200, b"ok")


def test_an_idle_connection_the_server_closed_is_not_reused(server: RawServer) -> None:
    # closed after a complete answer: the next request must not be lost on it
    client = origin(server.url)
    closed = threading.Event()

    def answer_then_close(conn: socket.socket) -> None:
        raw(OK, close=True)(conn)
        closed.set()

    server.answers = [answer_then_close, raw(OK)]
    assert client.post(f"{server.url}/", {}) == (200, b"ok")
    assert closed.wait(5)
    assert client.post(f"{server.url}/", {}) == (200, b"ok")
    assert server.connections == 2


@pytest.mark.parametrize(
    "answer",
    [
        raw(b"", close=True),  # closed without a word
        raw(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", close=True),  # cut short
        raw(b"HTTP/1.1 200 OK\r\nContent-", close=True),  # cut in the headers
        raw(b"garbage\r\n\r\n"),  # not HTTP
    ],
    ids=["closed", "cut-body", "cut-headers", "garbage"],
)
def test_a_lost_or_broken_answer_is_a_protocol_error(server: RawServer, answer: Answer) -> None:
    server.answers = [answer]
    with pytest.raises(ProtocolError):
        origin(server.url).post(f"{server.url}/", {})


def test_no_answer_in_time_is_a_read_timeout(server: RawServer) -> None:
    server.answers = [lambda _: None]
    with pytest.raises(ReadTimeoutError):
        origin(server.url).post(f"{server.url}/", {})


def test_a_closed_port_is_a_new_connection_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(NewConnectionError):
        origin(url).post(f"{url}/", {})


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/a\r\nX-Evil: 1", {}),
        ("/a b", {}),
        ("/a", {"X": "1\r\nX-Evil: 1"}),
        ("/a", {"X\nY": "1"}),
    ],
)
def test_control_characters_never_reach_the_wire(
    server: RawServer, path: str, headers: dict[str, str]
) -> None:
    with pytest.raises(ValueError, match="control characters"):
        origin(server.url).post(f"{server.url}{path}", headers)
    assert server.connections == 0


def test_a_url_of_another_origin_is_refused(server: RawServer) -> None:
    with pytest.raises(ValueError, match="another origin"):
        origin(server.url).post("http://elsewhere.example/", {})
