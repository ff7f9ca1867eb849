"""The lean RPC call (flask_smscode/aliyun/transport.py) against real servers.

Why these tests: the package signs and POSTs its own requests instead of going through
``AcsClient``. So the signature must be the SDK's, byte for byte, and accepted by the
signature-checking loopback Dysmsapi server for every action; the request must look like
the SDK's; the kept-alive pool must really reuse connections, survive a server closing them
without ever sending an SMS twice, and not be shared across ``fork()``; failures keep their
"not sent" / "delivery unknown" meaning; and nothing of the SDK is patched.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flask_smscode import AliyunSms
from flask_smscode.aliyun import transport as transport_module
from flask_smscode.aliyun.errors import AliyunProviderRefused, AliyunRequestFailed
from flask_smscode.aliyun.settings import AliyunSettings
from flask_smscode.aliyun.transport import Transport, signed_query
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET, PHONE
from tests.servers.fault_proxy import FaultProxy

CODE = "904731"


class CountingProxy(FaultProxy):
    """A FaultProxy that also counts the client connections it accepted."""

    def __init__(self, upstream: str, **kwargs: Any) -> None:
        super().__init__(upstream, **kwargs)
        self.accepted = 0

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.accepted += 1
        super()._serve(conn)


@pytest.fixture
def proxy(sms_server: Any) -> Iterator[CountingProxy]:
    with CountingProxy(sms_server.endpoint) as running:
        yield running


def make_transport(endpoint: str, **overrides: Any) -> Transport:
    values: dict[str, Any] = {
        "sign_name": "TestSign",
        "endpoint": endpoint,
        "protocol": "http",
        "timeout": 2.0,
        **overrides,
    }
    return Transport(AliyunSettings.build(ACCESS_KEY_ID, ACCESS_KEY_SECRET, **values))


def send_params(phone: str = PHONE, code: str = CODE) -> dict[str, str | None]:
    return {
        "PhoneNumbers": phone,
        "SignName": "TestSign",
        "TemplateCode": "SMS_123456789",
        "TemplateParam": json.dumps({"code": code}),
        "OutId": None,  # left out, never sent as "None"
    }


def sendsms_count(sms_server: Any) -> int:
    return sum(1 for r in sms_server.requests if r.action == "SendSms")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- the signature is the SDK's ----------------------------------------------------------

values = st.text(max_size=40) | st.sampled_from(
    ["", " ", "a b+c*d~e%7E", "张三", "😀/x?y=z&w", "-_.~", "138,139", '{"code":"1 2"}']
)


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z][A-Za-z]{0,12}", fullmatch=True), values, max_size=6))
def test_signed_query_is_byte_identical_to_the_sdk_composer(params: dict[str, str]) -> None:
    """Same params, timestamp and nonce: the SDK's ``get_signed_url`` and ours give the same
    URL (order, encoding, Signature) and the same string-to-sign."""
    from aliyunsdkcore.auth.composer import rpc_signature_composer

    reserved = {"Version", "Action", "Format", "RegionId", "Timestamp", "AccessKeyId"}
    params = {k: v for k, v in params.items() if k not in reserved and not k.startswith("Sign")}
    sdk_params = {
        **params,
        "Version": "2017-05-25",
        "Action": "SendSms",
        "Format": "JSON",
        "RegionId": "cn-hangzhou",
    }
    url, sdk_string = rpc_signature_composer.get_signed_url(
        sdk_params, ACCESS_KEY_ID, ACCESS_KEY_SECRET, "JSON", "POST", {}
    )
    sent = dict(urllib.parse.parse_qsl(url[2:], keep_blank_values=True))
    query, string_to_sign = signed_query(
        "SendSms",
        params,
        access_key_id=ACCESS_KEY_ID,
        access_key_secret=ACCESS_KEY_SECRET,
        region="cn-hangzhou",
        timestamp=sent["Timestamp"],
        nonce=sent["SignatureNonce"],
    )
    assert "/?" + query == url
    assert string_to_sign == sdk_string


class _Capture:
    """A raw HTTP/1.1 endpoint that records each request's bytes and answers ``{"Code":"OK"}``."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.requests: list[bytes] = []
        threading.Thread(target=self._run, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.listener.getsockname()[1]}"

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                self.requests.append(data)
                body = b'{"Code":"OK","Message":"OK","RequestId":"R"}'
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
                )

    def close(self) -> None:
        self.listener.close()


def _parts(raw: bytes) -> tuple[str, list[str], dict[str, str], bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    method, target, _ = lines[0].split(" ")
    path, _, query = target.partition("?")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    keys = [k for k, _ in urllib.parse.parse_qsl(query, keep_blank_values=True)]
    return f"{method} {path}", keys, headers, body


def test_the_request_is_the_one_the_sdk_sends() -> None:
    """Method, path, the query's keys in order, the headers (bar the User-Agent) and the
    empty body match what ``AcsClient`` + ``CommonRequest`` send."""
    from aliyunsdkcore.client import AcsClient
    from aliyunsdkcore.http import protocol_type
    from aliyunsdkcore.request import CommonRequest

    capture = _Capture()
    try:
        params = send_params()
        params["OutId"] = "order-1"
        make_transport(capture.endpoint).call("SendSms", params)
        client = AcsClient(ACCESS_KEY_ID, ACCESS_KEY_SECRET, "cn-hangzhou", auto_retry=False)
        request = CommonRequest(
            domain=capture.endpoint, version="2017-05-25", action_name="SendSms"
        )
        request.set_method("POST")
        request.set_protocol_type(protocol_type.HTTP)
        request.set_accept_format("json")
        for key, value in params.items():
            request.add_query_param(key, value)
        client.do_action_with_exception(request)
    finally:
        capture.close()
    ours, sdks = (_parts(raw) for raw in capture.requests)
    assert ours[0] == sdks[0] == "POST /"
    assert ours[1] == sdks[1]  # the same keys in the same order, Signature last
    assert ours[3] == sdks[3] == b""
    skip = {"user-agent"}
    assert {k: v for k, v in ours[2].items() if k not in skip} == {
        k: v for k, v in sdks[2].items() if k not in skip
    }
    assert ours[2]["user-agent"].startswith("AlibabaCloud (")


def test_every_action_is_signed_as_the_server_checks(sms_server: Any) -> None:
    """Each action that goes through Transport.call is accepted by the server, which
    recomputes every signature (Chinese text and 1000 commas included)."""
    transport = make_transport(sms_server.endpoint)
    assert transport.call("SendSms", send_params())["Code"] == "OK"
    phones = ",".join(f"138{i:08d}" for i in range(1000))
    notify = {
        **send_params(phones),
        "TemplateCode": "SMS_NOTIFY",
        "TemplateParam": json.dumps({"name": "张三 李*~", "time": "22:00"}, ensure_ascii=False),
    }
    assert transport.call("SendSms", notify)["Code"] == "OK"
    batch = {
        "PhoneNumberJson": json.dumps([PHONE, "13900139000"]),
        "SignNameJson": json.dumps(["TestSign", "阿里云短信测试"], ensure_ascii=False),
        "TemplateCode": "SMS_123456789",
        "TemplateParamJson": json.dumps([{"code": "1"}, {"code": "2"}]),
    }
    assert transport.call("SendBatchSms", batch)["Code"] == "OK"
    today = datetime.now(timezone(timedelta(hours=8))).strftime("%Y%m%d")
    details = {"PhoneNumber": PHONE, "SendDate": today, "PageSize": "10", "CurrentPage": "1"}
    assert transport.call("QuerySendDetails", details)["Code"] == "OK"
    assert transport.call("QuerySmsSign", {"SignName": "TestSign"})["Code"] == "OK"
    assert transport.call("QuerySmsTemplate", {"TemplateCode": "SMS_LOGIN"})["Code"] == "OK"
    # Dybaseapi's action through domain=: the server answers it (no issuer: a business code).
    token = transport.call(
        "QueryTokenForMnsQueue", {"MessageType": "SmsReport"}, domain=sms_server.endpoint
    )
    assert token["Code"] == "isp.SYSTEM_ERROR"
    assert len(sms_server.requests) == 7
    assert all(r.signature_ok and r.status == 200 for r in sms_server.requests)
    assert all("OutId" not in r.params for r in sms_server.requests if r.action == "SendSms")


# -- the SDK is left alone ---------------------------------------------------------------


def _sdk_functions() -> dict[tuple[str, str], object]:
    """Every attribute of every loaded aliyunsdkcore module, and of its classes."""
    import aliyunsdkcore.auth.algorithm.sha_hmac1
    import aliyunsdkcore.auth.composer.rpc_signature_composer
    import aliyunsdkcore.client
    import aliyunsdkcore.request  # noqa: F401

    seen: dict[tuple[str, str], object] = {}
    for name, module in list(sys.modules.items()):
        if module is None or not name.startswith("aliyunsdkcore"):
            continue
        for attr, value in list(vars(module).items()):
            seen[(name, attr)] = value
            if isinstance(value, type) and value.__module__ == name:
                for member, inner in vars(value).items():
                    seen[(f"{name}.{attr}", member)] = inner
    return seen


def test_sending_leaves_every_sdk_function_untouched(sms_server: Any) -> None:
    """Regression: the first send used to point the SDK's signer at the package's encoder,
    changing a third-party library under its host app. The SDK is now only read."""
    from aliyunsdkcore.auth.composer import rpc_signature_composer

    before = _sdk_functions()
    sms = AliyunSms(
        ACCESS_KEY_ID, ACCESS_KEY_SECRET, "TestSign", endpoint=sms_server.endpoint, protocol="http"
    )
    sms.send_sms([PHONE], "SMS_123456789", {"code": CODE})
    sms.send_message([f"138{i:08d}" for i in range(1200)], {"name": "a", "time": "b"}, "SMS_NOTIFY")
    after = _sdk_functions()
    changed = [key for key, value in before.items() if after.get(key) is not value]
    assert changed == []
    assert rpc_signature_composer.urlencode is urllib.parse.urlencode
    assert rpc_signature_composer.pathname2url is urllib.request.pathname2url
    assert all(r.signature_ok for r in sms_server.requests) and len(sms_server.sent) == 3


def test_the_sdk_loggers_are_left_alone(sms_server: Any) -> None:
    """The package no longer drops the SDK's log records behind the app's back."""
    make_transport(sms_server.endpoint).call("SendSms", send_params())
    for name in ("aliyunsdkcore", "aliyunsdkcore.client"):
        assert not any(
            type(f).__name__ == "_DropRecords" for f in logging.getLogger(name).filters
        ), name


# -- the pool ------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(sms_server: Any, proxy: CountingProxy) -> None:
    transport = make_transport(proxy.endpoint)
    for i in range(5):
        transport.call("SendSms", send_params(code=f"10000{i}"))
    assert proxy.accepted == 1
    assert sendsms_count(sms_server) == 5 and len(sms_server.sent) == 5


def test_a_connection_closed_by_the_server_is_replaced_without_a_double_send(
    sms_server: Any, proxy: CountingProxy
) -> None:
    """The server closes the idle kept-alive connection; the next call notices before
    writing, opens a new one, and the server receives exactly one SendSms for it."""
    transport = make_transport(proxy.endpoint)
    transport.call("SendSms", send_params(code="111111"))
    proxy.down()  # closes every client connection...
    proxy.up()  # ...and listens again on the same port
    time.sleep(0.05)  # let the FIN arrive
    transport.call("SendSms", send_params(code="222222"))
    assert proxy.accepted == 2
    assert sendsms_count(sms_server) == 2
    assert [m.code for m in sms_server.sent] == ["111111", "222222"]


def test_a_close_seen_only_after_the_request_left_is_not_retried(
    sms_server: Any, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the idle check cannot close: the server closes just as the request is
    written. The request left in full, so it may have been acted on: delivery unknown,
    no second attempt (this test hides the close from the idle check to force the race)."""
    transport = make_transport(proxy.endpoint)
    transport.call("SendSms", send_params(code="111111"))
    monkeypatch.setattr(transport_module, "_dropped", lambda sock: False)
    proxy.down()
    proxy.up()
    time.sleep(0.05)
    with pytest.raises(AliyunRequestFailed) as info:
        transport.call("SendSms", send_params(code="222222"))
    assert info.value.delivery_unknown is True
    assert info.value.provider_code == "SDK.HttpError"
    assert proxy.accepted == 1  # no retry on a new connection
    assert [m.code for m in sms_server.sent] == ["111111"]


def test_a_reset_pooled_connection_that_fails_the_write_is_retried_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pooled socket reset by the server fails while the request is being written: its
    last byte never left, so one new connection carries the call, exactly once."""
    listener = socket.create_server(("127.0.0.1", 0))
    served: list[bytes] = []

    def serve() -> None:
        for round_ in range(2):
            conn, _ = listener.accept()
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            served.append(data)
            body = b'{"Code":"OK","RequestId":"R"}'
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            if round_ == 0:  # reset the kept-alive connection (RST, not FIN)
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        transport = make_transport(f"127.0.0.1:{listener.getsockname()[1]}")
        transport.call("SendSms", send_params())
        time.sleep(0.05)  # the RST arrives
        # the reset lands after the idle check: hide it from the check
        monkeypatch.setattr(transport_module, "_dropped", lambda sock: False)
        taken: list[object] = []
        take = transport._pool.take
        monkeypatch.setattr(
            transport._pool, "take", lambda key: taken.append(take(key)) or taken[-1]
        )
        assert transport.call("SendSms", send_params())["Code"] == "OK"
        assert taken and taken[0] is not None  # the reset pooled socket was the one tried first
        thread.join(5)
    finally:
        listener.close()
    assert len(served) == 2


def test_concurrent_calls_share_the_pool(sms_server: Any, proxy: CountingProxy) -> None:
    transport = make_transport(proxy.endpoint)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                transport.call("SendSms", send_params(code=f"{n}{i:05d}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(sms_server.sent) == 80 and all(r.signature_ok for r in sms_server.requests)
    assert proxy.accepted <= 8  # at most one connection per thread in flight


def test_a_forked_worker_opens_its_own_connection(sms_server: Any, proxy: CountingProxy) -> None:
    """gunicorn forks workers after the app was loaded: a pooled socket inherited from the
    parent must not carry the child's requests."""
    transport = make_transport(proxy.endpoint)
    transport.call("SendSms", send_params(code="111111"))
    pid = os.fork()
    if pid == 0:  # the child: one call, then leave without running the parent's cleanup
        try:
            ok = transport.call("SendSms", send_params(code="222222"))["Code"] == "OK"
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert proxy.accepted == 2  # the child connected on its own
    transport.call("SendSms", send_params(code="333333"))
    assert proxy.accepted == 2  # the parent's socket was not touched by the child
    assert [m.code for m in sms_server.sent] == ["111111", "222222", "333333"]


# -- failures keep their meaning -----------------------------------------------------------


def test_connection_refused_is_not_sent() -> None:
    transport = make_transport(f"127.0.0.1:{closed_port()}")
    with pytest.raises(AliyunRequestFailed) as info:
        transport.call("SendSms", send_params())
    assert info.value.code == 46003 and info.value.delivery_unknown is False
    assert info.value.provider_code == "SDK.HttpError"
    assert info.value.__context__ is None and info.value.__cause__ is None


def test_an_unresolvable_host_is_not_sent() -> None:
    transport = make_transport("no-such-host.invalid", protocol="https", connect_timeout=1)
    with pytest.raises(AliyunRequestFailed) as info:
        transport.call("SendSms", send_params())
    assert info.value.delivery_unknown is False


def test_a_read_timeout_is_delivery_unknown(sms_server: Any) -> None:
    sms_server.stall_next(3)  # recorded as sent, answered late
    transport = make_transport(sms_server.endpoint, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(AliyunRequestFailed) as info:
        transport.call("SendSms", send_params())
    assert time.monotonic() - started < 2
    assert info.value.delivery_unknown is True and info.value.provider_code == "SDK.HttpError"
    assert len(sms_server.sent) == 1
    assert info.value.__context__ is None


def test_a_reset_after_the_request_left_is_delivery_unknown(
    sms_server: Any, proxy: CountingProxy
) -> None:
    proxy.plan(PHONE, "reset_after")
    with pytest.raises(AliyunRequestFailed) as info:
        make_transport(proxy.endpoint).call("SendSms", send_params())
    assert info.value.delivery_unknown is True
    assert len(sms_server.sent) == 1


@pytest.mark.parametrize("status", [400, 403, 500, 503])
def test_an_http_error_answer_is_refused_with_the_provider_code(
    sms_server: Any, status: int
) -> None:
    body = {"Code": f"Test.Code{status}", "Message": "no", "RequestId": "REQ-1"}
    sms_server.http_error_next(status, body)
    with pytest.raises(AliyunProviderRefused) as info:
        make_transport(sms_server.endpoint).call("SendSms", send_params())
    exc = info.value
    assert (exc.code, exc.http_status, exc.provider_code, exc.request_id) == (
        46002,
        status,
        f"Test.Code{status}",
        "REQ-1",
    )
    assert exc.__context__ is None


def test_a_gateway_page_without_json_is_refused_as_unknown(
    sms_server: Any, proxy: CountingProxy
) -> None:
    proxy.plan(PHONE, "http_5xx")
    with pytest.raises(AliyunProviderRefused) as info:
        make_transport(proxy.endpoint).call("SendSms", send_params())
    assert info.value.http_status == 502
    assert info.value.provider_code == "SDK.UnknownServerError"
    assert sms_server.sent == []


def test_a_wrong_secret_is_signature_does_not_match(sms_server: Any) -> None:
    transport = Transport(
        AliyunSettings.build(
            ACCESS_KEY_ID, "a-wrong-secret", endpoint=sms_server.endpoint, protocol="http"
        )
    )
    with pytest.raises(AliyunProviderRefused) as info:
        transport.call("SendSms", send_params())
    assert info.value.provider_code == "SignatureDoesNotMatch"
    assert "string to sign" not in str(info.value)


def test_proxy_environment_is_ignored(sms_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, dead)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert make_transport(sms_server.endpoint).call("SendSms", send_params())["Code"] == "OK"


# -- HTTPS ---------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    """A loopback TLS endpoint with a self-signed certificate (no trust store has it)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True) as tls:
                received.append(tls.recv(65536))

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()
        assert received == []  # the request never reached the untrusted server


def test_https_verifies_the_certificate_and_an_untrusted_one_is_not_sent(tls_server: str) -> None:
    transport = make_transport(tls_server, protocol="https")
    with pytest.raises(AliyunRequestFailed) as info:
        transport.call("SendSms", send_params())
    assert info.value.delivery_unknown is False
    assert info.value.__context__ is None


# -- nothing secret in logs or errors --------------------------------------------------------


def test_no_log_record_or_error_text_holds_the_key_the_code_or_the_phone(
    sms_server: Any, proxy: CountingProxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transport = make_transport(proxy.endpoint, timeout=0.5)
    texts: list[str] = []
    transport.call("SendSms", send_params())
    faults = [
        lambda: sms_server.http_error_next(
            400, {"Code": "InvalidParameter", "Message": PHONE + CODE}
        ),
        lambda: sms_server.stall_next(2),
        lambda: proxy.plan(PHONE, "reset_after"),
    ]
    for arm in faults:
        arm()
        with pytest.raises((AliyunProviderRefused, AliyunRequestFailed)) as info:
            transport.call("SendSms", send_params())
        texts += [str(info.value), repr(info.value), info.value.message]
    with pytest.raises(AliyunRequestFailed) as refused:
        make_transport(f"127.0.0.1:{closed_port()}").call("SendSms", send_params())
    texts += [str(refused.value), repr(refused.value)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    for secret in (ACCESS_KEY_ID, CODE, PHONE, "Signature="):
        assert not any(secret in text for text in texts), secret
