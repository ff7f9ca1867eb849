"""Sending through Tencent Cloud: the HTTP contract and every outcome of the one table,
through the real SDK and the loopback Tencent server (which checks the TC3 signature of
every call). Each app test runs against memory:// and a real Redis (``make_app``)."""

from __future__ import annotations

import json
import logging

import pytest

from flask_smscode import get_service
from flask_smscode.errors import DeliveryUnconfirmed, ProviderUnavailable
from flask_smscode.tencent.outcomes import CODES, Failover, Meaning
from flask_smscode.tencent.sender import TencentSender
from tests.helpers import E164, PHONE, assert_error, send, verify
from tests.servers.redis_server import free_port

HK_PHONE = "+85261234567"


def assert_nothing_left(app, client) -> None:
    """A definite refusal leaves no live code and gives the cooldown back."""
    with app.app_context():
        status = get_service().status(PHONE)
    assert status.code_ttl == 0 and status.cooldown == 0
    assert all(used == 0 for used in status.sends.values())


def test_send_then_verify(tencent_client, tencent_server):
    response = send(tencent_client)
    assert response.status_code == 200, response.get_data(as_text=True)
    [request] = tencent_server.action_requests("SendSms")
    assert request.signature_ok
    assert request.headers["X-TC-Version"] == "2021-01-11"
    assert request.headers["X-TC-Region"] == "ap-guangzhou"
    params = request.params
    assert params["PhoneNumberSet"] == [E164]  # one phone per SendSms
    assert params["SmsSdkAppId"] == "1400000001" and params["SignName"] == "TestSign"
    assert params["TemplateId"] == "1001"
    assert params["TemplateParamSet"] == [tencent_server.last_code(PHONE)]  # {1} = the code
    assert verify(tencent_client, tencent_server.last_code(PHONE)).status_code == 200


def test_session_context_is_the_out_id(tencent_app, tencent_client, tencent_server):
    assert send(tencent_client).status_code == 200
    sms = tencent_server.last_sms(PHONE)
    with tencent_app.app_context():
        delivery = get_service().deliveries.of(E164, sms.session_context)
    assert len(sms.session_context) == 16 and delivery.out_id == sms.session_context


def test_template_minutes_fill_the_second_parameter(make_tencent_app, tencent_server):
    app = make_tencent_app(
        SMSCODE_TENCENT_TEMPLATE_ID="1002",
        SMSCODE_TENCENT_TEMPLATE_MINUTES=True,
        SMSCODE_CODE_TTL_SECONDS=270,
    )
    assert send(app.test_client()).status_code == 200
    code = tencent_server.last_code(PHONE)
    assert tencent_server.last_sms(PHONE).params == [code, "5"]  # 270 s: 5 minutes


def test_template_per_purpose(make_tencent_app, tencent_server):
    app = make_tencent_app(
        SMSCODE_TENCENT_TEMPLATE_ID={"login": "1001", "signup": "1003", "reset_password": "1001"}
    )
    assert send(app.test_client(), purpose="signup").status_code == 200
    assert tencent_server.last_sms(PHONE).template_id == "1003"


def test_international_number_uses_the_international_template(make_tencent_app, tencent_server):
    app = make_tencent_app(SMSCODE_ALLOWED_REGIONS=["CN", "HK"])
    assert send(app.test_client(), phone=HK_PHONE).status_code == 200
    sms = tencent_server.last_sms(HK_PHONE)
    assert sms.template_id == "2001" and sms.sign_name is None


# -- every code of the table, per number and for the whole request ----------------------------

EXPECTED = {
    Meaning.INVALID_PHONE: (400, "invalid_phone"),
    Meaning.FLOW_CONTROL: (429, "throttled"),
}


@pytest.mark.parametrize("level", ["number", "request"])
@pytest.mark.parametrize("code", sorted(CODES))
def test_every_code_is_classified(code, level):
    """Through the real SDK: the number's SendStatus.Code and the request's Error.Code give
    the same outcome (memory store only: the table is what is under test)."""
    from flask import Flask

    from flask_smscode import sms_bp
    from tests.servers.tencent_server import SDK_APP_ID, SECRET_ID, SECRET_KEY, TencentServer

    row = CODES[code]
    with TencentServer() as server:
        app = Flask(__name__)
        app.config.update(
            SECRET_KEY="k",
            TESTING=True,
            SMSCODE_SENDER="tencent",
            SMSCODE_TENCENT_SECRET_ID=SECRET_ID,
            SMSCODE_TENCENT_SECRET_KEY=SECRET_KEY,
            SMSCODE_TENCENT_SDK_APP_ID=SDK_APP_ID,
            SMSCODE_TENCENT_SIGN_NAME="TestSign",
            SMSCODE_TENCENT_TEMPLATE_ID="1001",
            SMSCODE_TENCENT_ENDPOINT=server.endpoint,
            SMSCODE_TENCENT_PROTOCOL="http",
        )
        app.register_blueprint(sms_bp)
        server.fail_next(code, "provider text", level=level)
        response = send(app.test_client())
        assert len(server.action_requests("SendSms")) == 1  # never retried
        assert server.sent == []
    if row.meaning is Meaning.UNCONFIRMED:
        assert response.status_code == 200
        assert response.get_json()["delivery"] == "unconfirmed"
    elif row.meaning in EXPECTED:
        status, error = EXPECTED[row.meaning]
        body = assert_error(response, status, error)
        if row.meaning is Meaning.FLOW_CONTROL:
            assert body["retry_after"] == row.retry_after
    else:
        assert_error(response, 502, "provider_error")


@pytest.mark.parametrize("code", sorted(CODES))
def test_failover_follows_the_table(code, tencent_config, tencent_server):
    """The sender raises ProviderUnavailable (the failover signal) exactly for the codes
    the table lets move on."""
    sender = TencentSender(tencent_config, purposes=("login",))
    tencent_server.fail_next(code)
    with pytest.raises(Exception) as caught:
        sender.send(E164, "123456", "login", out_id="0123456789abcdef")
    failure = caught.value
    assert isinstance(failure, ProviderUnavailable) == (CODES[code].failover is Failover.ALWAYS)
    assert failure.provider_code == code and failure.out_id == "0123456789abcdef"
    assert failure.__cause__ is None and failure.__context__ is None  # nothing chained
    assert "123456" not in str(failure)


def test_an_unknown_code_is_unconfirmed(tencent_client, tencent_server):
    tencent_server.fail_next("FailedOperation.SomethingNew", level="number")
    response = send(tencent_client)
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"
    assert_error(send(tencent_client), 429, "throttled")  # the cooldown is kept


def test_an_unknown_auth_code_takes_its_family(tencent_config, tencent_server):
    tencent_server.fail_next("AuthFailure.SomethingNew")
    with pytest.raises(ProviderUnavailable):
        TencentSender(tencent_config).send(E164, "123456", "login", out_id="0" * 16)


def test_flow_control_answers_429_and_gives_everything_back(
    tencent_app, tencent_client, tencent_server, caplog
):
    tencent_server.fail_next("LimitExceeded.PhoneNumberOneHourLimit")
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        response = send(tencent_client)
    body = assert_error(response, 429, "throttled")
    assert body["retry_after"] == 3600 and response.headers["Retry-After"] == "3600"
    assert "LimitExceeded.PhoneNumberOneHourLimit" in caplog.text
    assert_nothing_left(tencent_app, tencent_client)


def test_invalid_number_is_invalid_phone(tencent_app, tencent_client, tencent_server):
    tencent_server.fail_next("InvalidParameterValue.IncorrectPhoneNumber")
    assert_error(send(tencent_client), 400, "invalid_phone")
    assert_nothing_left(tencent_app, tencent_client)


def test_unapproved_signature_is_provider_error(tencent_app, tencent_client, tencent_server):
    tencent_server.set_sign("TestSign", status=1)  # under review: refused per number
    assert_error(send(tencent_client), 502, "provider_error")
    [request] = tencent_server.action_requests("SendSms")
    assert request.error is None  # the request succeeded; the number's status refused
    assert_nothing_left(tencent_app, tencent_client)


# -- no answer ------------------------------------------------------------------------------


def test_timeout_after_the_request_left_is_unconfirmed(make_tencent_app, tencent_server):
    client = make_tencent_app(SMSCODE_TENCENT_TIMEOUT_SECONDS=0.5).test_client()
    tencent_server.stall_next(2.0)  # recorded, then answered too late
    response = send(client)
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"
    assert len(tencent_server.action_requests("SendSms")) == 1  # never retried
    assert_error(send(client), 429, "throttled")  # the cooldown is kept
    assert verify(client, tencent_server.last_code(PHONE)).status_code == 200


@pytest.mark.parametrize("after_read", [True, False])
def test_reset_connection_is_unconfirmed(tencent_client, tencent_server, after_read):
    tencent_server.drop_next(after_read=after_read, then_record=after_read)
    response = send(tencent_client)
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"
    assert_error(send(tencent_client), 429, "throttled")


def test_gateway_error_is_unconfirmed(tencent_client, tencent_server):
    """A non-200 answer comes from a gateway in front of the API (Tencent answers its own
    errors with 200): whether the backend sent is unknown, so never a second sender."""
    tencent_server.http_error_next(504)
    response = send(tencent_client)
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"


def test_unreachable_provider_is_definite(make_tencent_app, tencent_server):
    app = make_tencent_app(SMSCODE_TENCENT_ENDPOINT=f"127.0.0.1:{free_port()}")
    client = app.test_client()
    assert_error(send(client), 502, "provider_error")
    assert_nothing_left(app, client)


def test_unreachable_tencent_fails_over_to_alibaba(make_tencent_app, sms_server):
    """Connection refused sent nothing: the next sender of SMSCODE_SENDER carries the code."""
    app = make_tencent_app(
        SMSCODE_SENDER="tencent,aliyun", SMSCODE_TENCENT_ENDPOINT=f"127.0.0.1:{free_port()}"
    )
    client = app.test_client()
    assert send(client).status_code == 200
    assert verify(client, sms_server.last_code(PHONE)).status_code == 200


def test_insufficient_balance_fails_over_but_a_timeout_never(
    make_tencent_app, tencent_server, sms_server
):
    app = make_tencent_app(SMSCODE_SENDER="tencent,aliyun", SMSCODE_TENCENT_TIMEOUT_SECONDS=0.5)
    client = app.test_client()
    tencent_server.fail_next("FailedOperation.InsufficientBalanceInSmsPackage")
    assert send(client).status_code == 200
    assert len(sms_server.messages_to(PHONE)) == 1
    with app.app_context():
        get_service().reset(PHONE)
    tencent_server.stall_next(2.0)
    response = send(client)
    assert response.get_json()["delivery"] == "unconfirmed"
    assert len(sms_server.messages_to(PHONE)) == 1  # the backup was not asked


# -- secrets ----------------------------------------------------------------------------------


def test_the_code_and_credentials_never_reach_logs_or_errors(
    tencent_config, tencent_server, caplog
):
    from tests.servers.tencent_server import SECRET_KEY

    sender = TencentSender(tencent_config)
    caplog.set_level(logging.DEBUG)  # the SDK logs whole requests at DEBUG: silenced
    sender.send(E164, "918273", "login", out_id="0" * 16)
    failures: list[BaseException] = []
    for plan in ("fail", "stall", "drop"):
        if plan == "fail":
            tencent_server.fail_next("FailedOperation.SignatureIncorrectOrUnapproved")
        elif plan == "stall":
            tencent_server.stall_next(3.0)
        else:
            tencent_server.drop_next()
        try:
            sender.send(E164, "918273", "login", out_id="1" * 16)
        except (DeliveryUnconfirmed, ProviderUnavailable) as exc:
            failures.append(exc)
    assert len(failures) == 3
    texts = caplog.text + "".join(f"{f!s}{f!r}{vars(f)}" for f in failures) + repr(sender)
    texts += repr(sender.settings) + repr(sender.transport)
    assert "918273" not in texts and "13800138000" not in texts
    assert SECRET_KEY not in texts and tencent_config["SMSCODE_TENCENT_SECRET_ID"] not in texts
    assert all(f.__context__ is None and f.__cause__ is None for f in failures)


def test_request_body_is_json_with_the_code_only_in_its_parameter(tencent_client, tencent_server):
    send(tencent_client)
    [request] = tencent_server.action_requests("SendSms")
    assert json.loads(request.body)["TemplateParamSet"] == [tencent_server.last_code(PHONE)]
