"""The providers' HTTP client against a server that answers raw bytes, as HTTP allows them.

The fakes answer as Ronglian and Aliyun do (Content-Length, keep-alive); HTTP also allows
chunked bodies, bodies that end with the connection, interim 1xx answers and a server that
closes an idle connection. Each must come out as urllib3's pool made it come out. And a
server or a name lookup that is slow in any way still ends the call by its deadline, TLS
certificates and host names are checked, and an answer is read up to its cap.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from urllib3.exceptions import (
    ConnectTimeoutError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
    SSLError,
)

from smscode.adapters.providers.ronglian import classify_error
from smscode.adapters.providers.transport import Origin
from smscode.domain.outcomes import MaybeSent, NotSent
from smscode_dev.embedded import free_port

Answer = Callable[[socket.socket], None]  # writes one answer (or not) on the connection


class RawServer:
    """Reads each request on a connection and lets the next scripted answer write back."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.tls = tls
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
        if self.tls is not None:
            try:
                conn = self.tls.wrap_socket(conn, server_side=True)
            except OSError:  # the client refused our certificate
                return
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


def test_an_answer_lost_on_a_reused_connection_is_never_sent_again(server: RawServer) -> None:
    # a client that resends a request whose answer was lost on a kept-alive connection (as
    # libcurl does for a POST) would make Aliyun, which does not deduplicate, send twice
    client = origin(server.url)
    server.answers = [raw(OK), raw(b"", close=True), raw(OK)]
    assert client.post(f"{server.url}/", {}) == (200, b"ok")
    with pytest.raises(ProtocolError) as lost:
        client.post(f"{server.url}/", {})
    assert isinstance(classify_error(lost.value), MaybeSent)
    assert len(server.requests) == 2


def trickle(payload: bytes, every: float) -> Answer:
    """Write the answer a byte at a time, `every` seconds apart."""

    def answer(conn: socket.socket) -> None:
        for byte in payload:
            try:
                conn.sendall(bytes([byte]))
            except OSError:  # the client gave up
                return
            time.sleep(every)

    return answer


def test_an_answer_trickled_past_the_calls_time_is_cut_there(server: RawServer) -> None:
    # given a server writing its answer a byte every 0.1 s (inside the 0.5 s read timeout),
    # 4 s in all: longer than the call's connect and read timeouts together (1 s)
    server.answers = [trickle(OK, every=0.1)]
    # then the call ends as an answer lost (it may have been sent), not after the whole answer
    with pytest.raises(ReadTimeoutError) as lost:
        origin(server.url).post(f"{server.url}/", {})
    assert isinstance(classify_error(lost.value), MaybeSent)


def test_the_attempts_deadline_ends_a_call_before_its_own_timeouts(server: RawServer) -> None:
    server.answers = [lambda _: None]  # never answers
    client = Origin(server.url, connect_timeout=0.5, read_timeout=30, pool_size=4)
    started = time.monotonic()
    with pytest.raises(ReadTimeoutError):
        client.post(f"{server.url}/", {}, deadline=time.monotonic() + 0.3)
    assert time.monotonic() - started < 10  # long before its 30 s read timeout


def test_no_call_starts_once_its_deadline_has_passed(server: RawServer) -> None:
    with pytest.raises(ConnectTimeoutError) as late:
        origin(server.url).post(f"{server.url}/", {}, deadline=time.monotonic())
    assert isinstance(classify_error(late.value), NotSent)
    assert server.connections == 0


def test_a_name_lookup_that_hangs_ends_at_the_deadline_and_sends_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given a resolver that never answers for this host (a DNS server gone silent)
    released = threading.Event()
    real = socket.getaddrinfo

    def silent(host: str, *args: object, **kwargs: object) -> object:
        if host == "silent.invalid":
            released.wait(30)
        return real(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", silent)
    client = origin("http://silent.invalid:8883")
    started = time.monotonic()
    try:
        with pytest.raises(ConnectTimeoutError) as unresolved:
            client.post("http://silent.invalid:8883/", {})
    finally:
        released.set()
    assert time.monotonic() - started < 10  # not the 30 s the lookup would have taken
    assert isinstance(classify_error(unresolved.value), NotSent)


def test_an_answer_past_its_cap_is_refused(server: RawServer) -> None:
    big = b"x" * 100
    server.answers = [raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + big)]
    client = Origin(server.url, connect_timeout=0.5, read_timeout=0.5, pool_size=4,
                    max_answer_bytes=50)  # fmt: skip
    with pytest.raises(ProtocolError, match="larger than 50 bytes"):
        client.post(f"{server.url}/", {})


# -- TLS: certificates and host names are checked ------------------------------------------


def _certificate(
    subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey, names: list[x509.GeneralName],
) -> x509.Certificate:  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture
def tls(tmp_path: Path) -> Iterator[tuple[RawServer, Path]]:
    """A TLS server whose certificate (for "localhost") a CA of the test's own signed; and
    that CA's file."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test CA", ca_key, None, ca_key, [])
    leaf = _certificate("localhost", key, ca, ca_key, [x509.DNSName("localhost")])
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "leaf.pem", tmp_path / "leaf.key")
    served = RawServer(tls=context)
    yield served, tmp_path / "ca.pem"
    served.close()


def test_a_certificate_from_an_unknown_ca_is_refused_before_anything_is_sent(
    tls: tuple[RawServer, Path],
) -> None:
    server, _ = tls
    url = f"https://localhost:{server.port}"
    with pytest.raises(SSLError) as refused:
        origin(url).post(f"{url}/", {})
    assert isinstance(classify_error(refused.value), NotSent)
    assert server.requests == []


def test_a_trusted_certificate_serves_keep_alive_calls_and_a_wrong_host_name_is_refused(
    tls: tuple[RawServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, ca = tls
    monkeypatch.setenv("SSL_CERT_FILE", str(ca))  # the system's CAs, as OpenSSL reads them
    url = f"https://localhost:{server.port}"
    client = origin(url)
    server.answers = [raw(OK), raw(OK)]
    assert client.post(f"{url}/a", {}) == (200, b"ok")
    assert client.post(f"{url}/b", {}) == (200, b"ok")
    assert server.connections == 1
    # the same server under a name its certificate does not hold
    other = f"https://{ipaddress.ip_address('127.0.0.1')}:{server.port}"
    with pytest.raises(SSLError) as refused:
        origin(other).post(f"{other}/", {})
    assert isinstance(classify_error(refused.value), NotSent)
    assert len(server.requests) == 2


def test_a_forked_child_looks_names_up_and_keeps_deadlines_of_its_own(server: RawServer) -> None:
    # the name lookup and the watchdog run in threads, which a fork does not copy
    url = f"http://localhost:{server.port}"
    server.answers = [raw(OK), raw(OK)]
    assert origin(url).post(f"{url}/", {}) == (200, b"ok")  # the parent's threads started
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit code
        try:
            answered = origin(url).post(f"{url}/", {}) == (200, b"ok")
        except BaseException:
            answered = False
        os._exit(0 if answered else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0
