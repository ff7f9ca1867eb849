"""The fault proxy does what the chaos benchmark and the failover tests rely on: each fault
lands on the request that names its token, the others pass through unchanged (keep-alive
included), and "forwarded" faults really reach the upstream server."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.servers.fault_proxy import FaultProxy


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[bytes] = []

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.seen.append(body)
        answer = b"ok:" + body
        self.send_response(200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    _Echo.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with FaultProxy(f"127.0.0.1:{server.server_address[1]}", hold_seconds=2) as p:
        yield p
    server.shutdown()
    server.server_close()


def post(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, bytes]:
    conn.request("POST", "/", body=body)
    response = conn.getresponse()
    return response.status, response.read()


def test_requests_pass_through_on_one_connection(proxy):
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=2)
    assert post(conn, b"a13900000001") == (200, b"ok:a13900000001")
    assert post(conn, b"b13900000002") == (200, b"ok:b13900000002")
    assert proxy.forwarded == 2 and _Echo.seen == [b"a13900000001", b"b13900000002"]


@pytest.mark.parametrize(
    ("fault", "reached"),
    [("reset_before", False), ("reset_after", True), ("read_timeout", True)],
)
def test_connection_faults_and_whether_the_upstream_saw_the_request(proxy, fault, reached):
    proxy.plan("13900000001", fault)
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=0.5)
    with pytest.raises((ConnectionError, TimeoutError, http.client.RemoteDisconnected)):
        post(conn, b"phone=13900000001")
    assert (_Echo.seen == [b"phone=13900000001"]) is reached
    assert proxy.applied == {fault: 1} and proxy.pending() == 0
    # Another send is unaffected.
    fresh = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=2)
    assert post(fresh, b"phone=13900000002")[0] == 200


def test_http_5xx_is_answered_without_forwarding(proxy):
    proxy.plan(b"13900000001", "http_5xx")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=2)
    status, body = post(conn, b"phone=13900000001")
    assert status == 502 and b"Bad Gateway" in body and _Echo.seen == []


def test_slow_answers_arrive(proxy):
    proxy.plan("13900000001", "slow")
    conn = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=2)
    assert post(conn, b"13900000001") == (200, b"ok:13900000001")


def test_refusing_refuses_then_listens_again_on_the_same_port(proxy):
    port = proxy.port
    with proxy.refusing():
        with pytest.raises(ConnectionRefusedError):
            post(http.client.HTTPConnection("127.0.0.1", port, timeout=1), b"x")
    assert proxy.port == port
    assert post(http.client.HTTPConnection("127.0.0.1", port, timeout=2), b"x") == (200, b"ok:x")


def test_an_unknown_fault_is_refused(proxy):
    with pytest.raises(ValueError, match="unknown fault"):
        proxy.plan("1", "explode")
