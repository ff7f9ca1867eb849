"""Secrets: the autouse watch of conftest.py checks every test of this suite; here it is shown
to catch a leak, and driven through the paths most likely to leak (provider failures, a wrong
AccessKey secret, timeouts, unexpected errors) over real HTTP with DEBUG logging."""

from __future__ import annotations

import logging

import pytest
import requests

from flask_smscode import SmsCodeError, code_sent, send_code
from tests.helpers import PHONE
from tests.security.conftest import SecretsWatch
from tests.security.support import RELAXED, send, session, verify, wrong
from tests.servers.live_server import live_server


@pytest.mark.parametrize("leak", ["log", "answer", "exception", "phone", "secret"])
def test_the_watch_catches_each_kind_of_leak(leak):
    watch = SecretsWatch()
    text = {
        "log": "sent code 654321",
        "answer": '{"code": "654321"}',
        "exception": "bad 654321",
        "phone": "to 13800138000",
        "secret": "test-key-secret",
    }
    if leak == "answer":
        watch.answers.append(text[leak])
    elif leak == "exception":
        watch.exceptions.append(text[leak])
    else:
        watch.logs.append(text[leak])
    with pytest.raises(AssertionError, match="leaked"):
        watch.check({"654321"})
    clean = SecretsWatch()
    clean.logs.append("request id 9a654321f masked 138****8000")  # not a code, not a phone
    clean.check({"654321"})


def test_failure_paths_leak_nothing_over_real_http(make_app, sms_server, secrets_watch):
    app = make_app(**RELAXED, SMSCODE_ALIYUN_TIMEOUT_SECONDS=0.5, DEBUG=True)
    with live_server(app) as base, session() as s:

        def post(path: str, body: dict) -> requests.Response:
            return s.post(f"{base}{path}", json=body, timeout=10)

        assert post("/sms/send", {"phone": PHONE}).status_code == 200
        code = sms_server.last_code(PHONE)
        assert post("/sms/verify", {"phone": PHONE, "code": wrong(code)}).status_code == 400
        assert post("/sms/verify", {"phone": PHONE, "code": code}).status_code == 200
        sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL")
        assert post("/sms/send", {"phone": PHONE}).status_code == 429
        sms_server.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
        assert post("/sms/send", {"phone": PHONE}).status_code == 400
        sms_server.http_error_next(500, "<html>oops 13800138000</html>")
        assert post("/sms/send", {"phone": PHONE}).status_code == 502
        sms_server.stall_next(1.5)
        assert post("/sms/send", {"phone": PHONE}).status_code == 200  # unconfirmed
        sms_server.drop_next()
        assert post("/sms/send", {"phone": PHONE}).status_code in (200, 502)
    bad = make_app(SMSCODE_ALIYUN_ACCESS_KEY_SECRET="wrong-secret").test_client()
    assert send(bad, PHONE).status_code == 502
    with app.app_context():
        try:
            sms_server.fail_next("isp.SYSTEM_ERROR")
            send_code(PHONE)
        except SmsCodeError as exc:
            secrets_watch.exception(exc)
    assert len(sms_server.requests) >= 8


def test_a_crashing_signal_receiver_leaks_nothing(make_app, sms_server, caplog):
    caplog.set_level(logging.DEBUG)
    app = make_app()

    def receiver(sender, phone, **kwargs):
        raise RuntimeError(f"receiver failed for {phone}")  # a careless app's message

    code_sent.connect(receiver, sender=app)
    try:
        response = send(app.test_client())
    finally:
        code_sent.disconnect(receiver, sender=app)
    assert response.status_code == 200  # the SMS went out; the client must hear so
    assert verify(app.test_client(), sms_server.last_code(PHONE)).status_code == 200
