"""Sending through Alibaba Cloud: every provider outcome, through the real SDK and the
loopback Dysmsapi server (which checks the signature of every call)."""

from __future__ import annotations

import logging
import re

import pytest

from flask_smscode import ConfigurationError, get_service
from tests.helpers import E164, PHONE, assert_error, send, verify
from tests.servers.redis_server import free_port


def sendsms_requests(sms_server) -> list:
    return [r for r in sms_server.requests if r.action == "SendSms"]


def assert_nothing_left(app, sms_server, client) -> None:
    """A definite rejection leaves no live code and gives the cooldown back."""
    with app.app_context():
        status = get_service().status(PHONE)
    assert status.code_ttl == 0 and status.cooldown == 0
    assert all(used == 0 for used in status.sends.values())
    assert send(client).status_code == 200  # no wait: the cooldown was given back


def test_request_is_signed_and_well_formed(client, sms_server):
    send(client)
    [request] = sendsms_requests(sms_server)
    assert request.signature_ok
    params = request.params
    assert params["Action"] == "SendSms" and params["Version"] == "2017-05-25"
    assert params["RegionId"] == "cn-hangzhou" and params["AccessKeyId"] == "test-key-id"
    assert params["PhoneNumbers"] == "13800138000"
    assert params["TemplateParam"] == '{"code":"%s"}' % sms_server.last_code(PHONE)
    assert len(params["OutId"]) == 16  # the send id: 64 random bits in hex


def test_flow_control_is_throttled(app, client, sms_server, caplog):
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5")
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        response = send(client)
    body = assert_error(response, 429, "throttled")
    assert body["retry_after"] == 3600 and response.headers["Retry-After"] == "3600"
    assert "isv.BUSINESS_LIMIT_CONTROL" in caplog.text
    assert_nothing_left(app, sms_server, client)


def test_minute_flow_control_waits_a_minute(client, sms_server):
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
    assert assert_error(send(client), 429, "throttled")["retry_after"] == 60


def test_illegal_mobile_is_invalid_phone(app, client, sms_server):
    sms_server.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
    assert_error(send(client), 400, "invalid_phone")
    assert_nothing_left(app, sms_server, client)


@pytest.mark.parametrize(
    "provider_code",
    [
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.INVALID_PARAMETERS",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.OUT_OF_SERVICE",
        "isv.PRODUCT_UN_SUBSCRIPT",
        "isv.PRODUCT_UNSUBSCRIBE",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.DAY_LIMIT_CONTROL",
        "isv.MONTH_LIMIT_CONTROL",
        "isp.RAM_PERMISSION_DENY",
        "isp.SYSTEM_ERROR",
    ],
)
def test_other_provider_errors_are_502(app, client, sms_server, caplog, provider_code):
    sms_server.fail_next(provider_code)
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        response = send(client)
    body = assert_error(response, 502, "provider_error")
    assert provider_code not in response.get_data(as_text=True)  # the client learns nothing
    [line] = [r for r in caplog.records if "event=send" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert f"provider_code={provider_code}" in line.getMessage()
    assert "request_id=" in line.getMessage()
    assert body["message"]
    assert_nothing_left(app, sms_server, client)


@pytest.mark.parametrize("body", [None, "<html>Bad Gateway</html>"])
def test_http_5xx_is_provider_error(app, client, sms_server, body):
    sms_server.http_error_next(500 if body is None else 502, body)
    assert_error(send(client), 502, "provider_error")
    assert len(sendsms_requests(sms_server)) == 1  # never retried
    assert_nothing_left(app, sms_server, client)


def test_timeout_after_the_request_left_is_unconfirmed(make_app, sms_server):
    app = make_app(SMSCODE_ALIYUN_TIMEOUT_SECONDS=0.5)
    client = app.test_client()
    sms_server.stall_next(2.0)  # the server records the SMS, then answers too late
    response = send(client)
    assert response.status_code == 200
    assert response.get_json()["delivery"] == "unconfirmed"
    assert len(sendsms_requests(sms_server)) == 1  # an ambiguous send is never retried
    assert_error(send(client), 429, "throttled")  # the cooldown is kept
    code = sms_server.last_code(PHONE)  # the message did go out: its code works
    assert verify(client, code).status_code == 200


def test_dropped_connection_is_unconfirmed(client, sms_server):
    sms_server.drop_next()
    response = send(client)
    assert response.status_code == 200
    assert response.get_json()["delivery"] == "unconfirmed"
    assert_error(send(client), 429, "throttled")


def test_unreachable_provider_is_definite(make_app, sms_server):
    app = make_app(SMSCODE_ALIYUN_ENDPOINT=f"127.0.0.1:{free_port()}")
    client = app.test_client()
    assert_error(send(client), 502, "provider_error")
    with app.app_context():
        assert get_service().status(PHONE).cooldown == 0


def test_wrong_secret_is_provider_error(make_app, sms_server):
    client = make_app(SMSCODE_ALIYUN_ACCESS_KEY_SECRET="not-the-secret").test_client()
    assert_error(send(client), 502, "provider_error")
    assert sms_server.sent == []
    assert sendsms_requests(sms_server)[0].signature_ok is False


def test_https_is_the_default(make_app, sms_server):
    # The loopback server speaks plain HTTP: a TLS hello is not a request it can record.
    client = make_app(SMSCODE_ALIYUN_PROTOCOL=None, SMSCODE_ALIYUN_TIMEOUT_SECONDS=1).test_client()
    assert_error(send(client), 502, "provider_error")
    assert sms_server.sent == [] and sendsms_requests(sms_server) == []


def test_http_is_refused_for_a_remote_endpoint(make_app):
    with pytest.raises(ConfigurationError, match="SMSCODE_ALIYUN_PROTOCOL"):
        make_app(SMSCODE_ALIYUN_ENDPOINT="dysmsapi.aliyuncs.com")


@pytest.mark.parametrize(
    "key",
    [
        "SMSCODE_ALIYUN_ACCESS_KEY_ID",
        "SMSCODE_ALIYUN_ACCESS_KEY_SECRET",
        "SMSCODE_ALIYUN_SIGN_NAME",
        "SMSCODE_ALIYUN_TEMPLATE_CODE",
    ],
)
def test_missing_setting_fails_at_start_naming_the_key(make_app, monkeypatch, key):
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", raising=False)
    with pytest.raises(ConfigurationError, match=key):
        make_app(**{key: None})


def test_access_keys_fall_back_to_the_environment(make_app, sms_server, monkeypatch):
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "test-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-key-secret")
    client = make_app(
        SMSCODE_ALIYUN_ACCESS_KEY_ID=None, SMSCODE_ALIYUN_ACCESS_KEY_SECRET=None
    ).test_client()
    assert send(client).status_code == 200
    assert sendsms_requests(sms_server)[0].signature_ok


def test_template_per_purpose(make_app, sms_server):
    templates = {"login": "SMS_LOGIN", "signup": "SMS_SIGNUP", "reset_password": "SMS_RESET"}
    client = make_app(
        SMSCODE_ALIYUN_TEMPLATE_CODE=templates, SMSCODE_RESEND_INTERVAL_SECONDS=0
    ).test_client()
    for purpose, template in templates.items():
        assert send(client, purpose=purpose).status_code == 200
        assert sms_server.sent[-1].template_code == template


def test_template_dict_must_cover_every_purpose(make_app):
    with pytest.raises(ConfigurationError, match="reset_password"):
        make_app(SMSCODE_ALIYUN_TEMPLATE_CODE={"login": "SMS_LOGIN", "signup": "SMS_SIGNUP"})


def test_template_param_name(make_app, sms_server):
    client = make_app(SMSCODE_ALIYUN_TEMPLATE_PARAM="number").test_client()
    send(client)  # SMS_123456789 wants "code": the server refuses, proving the name was used
    assert '"number"' in sendsms_requests(sms_server)[0].params["TemplateParam"]


class RecordingSender:
    """A custom sender loaded from its dotted path."""

    outbox: list[tuple[str, str, str]] = []

    def __init__(self, config) -> None:
        self.config = config

    def send(self, phone, code, purpose, *, out_id):
        from flask_smscode import SendReceipt

        RecordingSender.outbox.append((phone, code, purpose))
        return SendReceipt(provider_code="OK", request_id=out_id)


def test_custom_sender_by_dotted_path(make_app):
    RecordingSender.outbox.clear()
    client = make_app(SMSCODE_SENDER=f"{__name__}.RecordingSender").test_client()
    assert send(client, purpose="signup").status_code == 200
    [(phone, code, purpose)] = RecordingSender.outbox
    assert (phone, purpose) == (E164, "signup")
    assert verify(client, code, purpose="signup").status_code == 200


class ExplodingSender:
    def __init__(self, config) -> None:
        pass

    def send(self, phone, code, purpose, *, out_id):
        raise RuntimeError("boom")


def test_custom_sender_crash_is_provider_error(make_app):
    app = make_app(SMSCODE_SENDER=f"{__name__}.ExplodingSender")
    client = app.test_client()
    assert_error(send(client), 502, "provider_error")
    with app.app_context():
        assert get_service().status(PHONE).cooldown == 0


def test_bad_sender_path_fails_at_start(make_app):
    with pytest.raises(ConfigurationError, match="SMSCODE_SENDER"):
        make_app(SMSCODE_SENDER="no.such.module.Sender")
    with pytest.raises(ConfigurationError, match="SMSCODE_SENDER"):
        make_app(SMSCODE_SENDER="carrier-pigeon")


def test_console_sender_shows_the_code_only_in_debug_or_testing(make_app, caplog):
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        app = make_app(SMSCODE_SENDER="console")
        send(app.test_client())
    console = [r.getMessage() for r in caplog.records if r.name == "flask_smscode.console"]
    assert len(console) == 1 and "138****8000" in console[0]
    assert re.search(r"code \d{6} sent", console[0])

    caplog.clear()
    with (
        pytest.warns(UserWarning, match="console sender"),
        caplog.at_level(logging.INFO, logger="flask_smscode"),
    ):
        quiet = make_app(register=False, TESTING=False, SMSCODE_SENDER="console")
        from flask_smscode import sms_bp

        quiet.register_blueprint(sms_bp)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        send(quiet.test_client(), "13900139000")
    [line] = [r.getMessage() for r in caplog.records if r.name == "flask_smscode.console"]
    assert "139****9000" in line and not re.search(r"\d{5,}", line)
