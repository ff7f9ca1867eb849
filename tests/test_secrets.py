"""Nothing secret leaves the process: no code, AccessKey or full phone number in any log
line (the SDK's own included), response, exception text or terminal output."""

from __future__ import annotations

import json
import logging
import traceback

import pytest

from flask_smscode import AliyunSms, AliyunSmsError, SmsCodeError, get_service, send_code
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET, E164, PHONE, send, verify
from tests.servers.redis_server import free_port

SECRETS_ALWAYS = (ACCESS_KEY_ID, ACCESS_KEY_SECRET, PHONE, E164)


def sent_codes(sms_server) -> set[str]:
    """Every code that went over the wire, accepted or not."""
    codes = set()
    for request in sms_server.requests:
        param = request.params.get("TemplateParam")
        if param:
            codes.update(json.loads(param).values())
    return codes


def assert_clean(text: str, codes: set[str], phone_allowed: bool = False) -> None:
    for secret in (*SECRETS_ALWAYS, *codes):
        if phone_allowed and secret in (PHONE, E164):
            continue
        assert secret not in text, f"{secret!r} leaked"


def test_no_secret_in_logs_responses_or_exceptions(make_app, sms_server, caplog, capfd):
    caplog.set_level(logging.DEBUG)  # everything, the SDK's own loggers included
    app = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0, SMSCODE_ALIYUN_TIMEOUT_SECONDS=0.5)
    client = app.test_client()
    bodies: list[str] = []

    def record(response) -> None:
        bodies.append(response.get_data(as_text=True) + str(dict(response.headers)))

    record(send(client))  # success
    code = sms_server.last_code(PHONE)
    record(verify(client, f"{(int(code) + 1) % 10**6:06d}"))  # wrong code
    record(verify(client, code))  # right code
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    record(send(client))
    sms_server.http_error_next(500, "<html>oops 13800138000</html>")
    record(send(client))
    sms_server.stall_next(1.5)  # read timeout: URL in SDK error
    record(send(client))
    sms_server.drop_next()
    record(send(client))

    # A wrong secret makes the SDK log the server's string-to-sign, code included.
    bad = make_app(SMSCODE_ALIYUN_ACCESS_KEY_SECRET="wrong").test_client()
    record(send(bad, "13800138000"))
    # Connection refused: the SDK's exception text holds the whole URL.
    gone = make_app(SMSCODE_ALIYUN_ENDPOINT=f"127.0.0.1:{free_port()}").test_client()
    record(send(gone, "13800138000"))

    errors: list[BaseException] = []
    with app.app_context():
        try:
            sms_server.fail_next("isp.SYSTEM_ERROR")
            send_code(PHONE)
        except SmsCodeError as exc:
            errors.append(exc)
    client_errors: list[BaseException] = []
    sms = AliyunSms(
        ACCESS_KEY_ID, "wrong", "TestSign", endpoint=sms_server.endpoint, protocol="http", timeout=1
    )
    try:
        sms.send_sms(["13800138000"], "SMS_123456789", {"code": "654321"})
    except AliyunSmsError as exc:
        client_errors.append(exc)
    assert errors and client_errors

    codes = sent_codes(sms_server) | {"654321"}
    assert len(codes) >= 5, codes
    log_text = "\n".join(
        record.getMessage()
        + ("".join(traceback.format_exception(*record.exc_info)) if record.exc_info else "")
        for record in caplog.records
    )
    assert "event=send" in log_text and "138****8000" in log_text
    assert_clean(log_text, codes)
    # /sms/verify answers with the E.164 phone (its owner just proved it); nothing else does.
    assert_clean("\n".join(bodies), codes, phone_allowed=True)
    assert_clean("\n".join(b for b in bodies if '"token"' not in b), codes)
    for exc in errors + client_errors:
        chain: BaseException | None = exc
        while chain is not None:  # the messages of the whole chain (causes included)
            assert_clean(str(chain) + repr(chain), codes)
            chain = chain.__cause__ or chain.__context__
    out, err = capfd.readouterr()
    assert_clean(out + err, codes)
    assert_clean(repr(sms) + repr(get_service(app).settings), codes)


@pytest.mark.parametrize("debug", [True, False])
def test_code_never_in_responses_even_in_debug(make_app, sms_server, debug):
    client = make_app(DEBUG=debug).test_client()
    response = send(client)
    code = sms_server.last_code(PHONE)
    assert code not in response.get_data(as_text=True)
    assert code not in verify(client, code).get_data(as_text=True)
