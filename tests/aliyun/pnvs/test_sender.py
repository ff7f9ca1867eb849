"""The pnvs sender keeps the app's contract: send -> the SMS carries the package's code ->
verify (locally, atomically) -> single use; wrong codes, throttles, unconfirmed deliveries.
Through the real SDK and the loopback Dypnsapi server, on memory:// and a real Redis."""

from __future__ import annotations

import json
import logging

from flask_smscode import get_service
from flask_smscode.aliyun.pnvs.sender import PnvsSender
from flask_smscode.errors import DeliveryUnconfirmed, ProviderUnavailable
from tests.aliyun.pnvs.conftest import PNVS_SIGN, PNVS_TEMPLATE
from tests.helpers import E164, PHONE, assert_error, send, verify, wrong
from tests.servers.redis_server import free_port


def sends(server) -> list:
    return [r for r in server.requests if r.action == "SendSmsVerifyCode"]


def test_send_verify_single_use(pnvs_client, pnvs_server):
    response = send(pnvs_client)
    assert response.status_code == 200, response.get_data(as_text=True)
    code = pnvs_server.last_code(PHONE)
    assert code not in response.get_data(as_text=True)
    assert verify(pnvs_client, code).status_code == 200
    assert_error(verify(pnvs_client, code), 400, "code_expired")  # single use
    # Verify never called the provider: the code is checked in the package's own store.
    assert [r.action for r in pnvs_server.requests] == ["SendSmsVerifyCode"]


def test_wrong_code_is_refused_and_counted(pnvs_client, pnvs_server):
    send(pnvs_client)
    code = pnvs_server.last_code(PHONE)
    body = assert_error(verify(pnvs_client, wrong(code)), 400, "invalid_code")
    assert body["attempts_left"] == 4
    assert verify(pnvs_client, code).status_code == 200


def test_request_is_signed_and_carries_the_package_code(make_pnvs_app, pnvs_server):
    app = make_pnvs_app(SMSCODE_PNVS_SCHEME_NAME="测试方案", SMSCODE_CODE_TTL_SECONDS=240)
    send(app.test_client())
    [request] = sends(pnvs_server)
    assert request.signature_ok and request.status == 200
    params = request.params
    assert params["Version"] == "2017-05-25" and params["AccessKeyId"] == "test-key-id"
    assert params["PhoneNumber"] == PHONE and params["CountryCode"] == "86"
    assert params["SignName"] == PNVS_SIGN and params["TemplateCode"] == PNVS_TEMPLATE
    assert params["SchemeName"] == "测试方案"
    code = pnvs_server.last_code(PHONE)
    assert json.loads(params["TemplateParam"]) == {"code": code, "min": "4"}
    assert params["ValidTime"] == "240" and params["Interval"] == "60"
    assert params["ReturnVerifyCode"] == "false"
    assert "CodeLength" not in params and "DuplicatePolicy" not in params
    assert len(params["OutId"]) == 16 and pnvs_server.last_sms(PHONE).out_id == params["OutId"]
    assert not pnvs_server.last_sms(PHONE).generated  # the package's code, not PNVS's


def test_template_per_purpose(make_pnvs_app, pnvs_server):
    app = make_pnvs_app(
        SMSCODE_PNVS_TEMPLATE_CODE={
            "login": "100001",
            "signup": "100002",
            "reset_password": "100003",
        }
    )
    client = app.test_client()
    assert send(client, purpose="signup").status_code == 200
    assert pnvs_server.last_sms(PHONE).template_code == "100002"


def test_app_cooldown_answers_before_pnvs(pnvs_client, pnvs_server):
    assert send(pnvs_client).status_code == 200
    assert_error(send(pnvs_client), 429, "throttled")
    assert len(sends(pnvs_server)) == 1


def test_pnvs_frequency_control_is_throttled(make_pnvs_app, pnvs_server, caplog):
    app = make_pnvs_app(SMSCODE_RESEND_INTERVAL_SECONDS=30)
    client = app.test_client()
    pnvs_server.fail_next("biz.FREQUENCY")
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        response = send(client)
    body = assert_error(response, 429, "throttled")
    assert body["retry_after"] == 30  # PNVS's Interval: the app's own cooldown
    assert "biz.FREQUENCY" in caplog.text
    with app.app_context():
        status = get_service().status(PHONE)
    assert status.code_ttl == 0 and status.cooldown == 0  # nothing left behind
    assert send(client).status_code == 200


def test_illegal_number_is_invalid_phone(pnvs_client, pnvs_server):
    pnvs_server.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
    assert_error(send(pnvs_client), 400, "invalid_phone")


def test_timeout_after_the_request_left_is_unconfirmed(make_pnvs_app, pnvs_server):
    client = make_pnvs_app(SMSCODE_PNVS_TIMEOUT_SECONDS=0.5).test_client()
    pnvs_server.stall_next(2.0)  # recorded at once, answered too late
    response = send(client)
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"
    assert len(sends(pnvs_server)) == 1  # never retried
    assert_error(send(client), 429, "throttled")  # the cooldown is kept
    assert verify(client, pnvs_server.last_code(PHONE)).status_code == 200


def test_dropped_connection_is_unconfirmed(pnvs_client, pnvs_server):
    pnvs_server.drop_next()
    response = send(pnvs_client)
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"


def test_unreachable_endpoint_is_definite(pnvs_config):
    sender = PnvsSender(
        {**pnvs_config, "SMSCODE_PNVS_ENDPOINT": f"127.0.0.1:{free_port()}"}, purposes=("login",)
    )
    try:
        sender.send(E164, "123456", "login", out_id="0123456789abcdef")
    except ProviderUnavailable as exc:
        assert exc.provider_code == "SDK.HttpError" and exc.sender == "pnvs"
    else:
        raise AssertionError("an unreachable endpoint must fail definitely")


def test_the_code_never_reaches_logs_or_exceptions(make_pnvs_app, pnvs_server, caplog):
    client = make_pnvs_app(SMSCODE_PNVS_TIMEOUT_SECONDS=0.5).test_client()
    with caplog.at_level(logging.DEBUG):
        send(client)
        code = pnvs_server.last_code(PHONE)
        verify(client, wrong(code))
        verify(client, code)
    assert code not in caplog.text and PHONE not in caplog.text
    sender = PnvsSender(
        {**make_pnvs_app().config, "SMSCODE_PNVS_TIMEOUT_SECONDS": 0.5}, purposes=("login",)
    )
    failures = []
    for plan in ("stall", "fail", "http", "drop"):
        pnvs_server.reset()
        if plan == "stall":
            pnvs_server.stall_next(2.0)
        elif plan == "fail":
            pnvs_server.fail_next("isv.SMS_TEMPLATE_ILLEGAL")
        elif plan == "http":
            pnvs_server.http_error_next(400, {"Code": "SignatureDoesNotMatch", "Message": "x"})
        else:
            pnvs_server.drop_next()
        try:
            sender.send(E164, "987654", "login", out_id="0123456789abcdef")
        except (DeliveryUnconfirmed, ProviderUnavailable, Exception) as exc:
            failures.append(exc)
    assert len(failures) == 4
    for exc in failures:
        text = repr(exc) + str(exc) + repr(vars(exc))
        assert "987654" not in text and "13800138000" not in text
        assert exc.__cause__ is None and exc.__context__ is None
    assert "test-key-secret" not in repr(sender) + repr(sender.settings)


def test_a_definite_pnvs_failure_fails_over_to_dysmsapi(
    make_pnvs_app, pnvs_server, sms_server, aliyun_config
):
    """`SMSCODE_SENDER = "pnvs,aliyun"`: a template refusal moves on; PNVS's frequency
    control and an unconfirmed send do not (the table's classification, through the chain)."""
    aliyun = {k: v for k, v in aliyun_config.items() if k != "SMSCODE_SENDER"}
    app = make_pnvs_app(SMSCODE_SENDER="pnvs,aliyun", **aliyun)
    client = app.test_client()
    pnvs_server.fail_next("isv.SMS_TEMPLATE_ILLEGAL")
    assert send(client).status_code == 200
    code = sms_server.last_code(PHONE)  # the backup carried it
    assert pnvs_server.sent == [] and verify(client, code).status_code == 200

    other = "13800138001"
    pnvs_server.fail_next("biz.FREQUENCY")
    assert_error(send(client, other), 429, "throttled")
    assert sms_server.messages_to(other) == []
