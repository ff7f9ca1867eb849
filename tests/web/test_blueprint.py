"""The HTTP contract of /sms/send and /sms/verify, on memory:// and on Redis.

Codes are read from the loopback Dysmsapi server, which received them through the real
SDK with a checked signature.
"""

from __future__ import annotations

import time

import pytest
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from flask_smscode import check_token, sms_bp
from tests.helpers import E164, PHONE, assert_error, send, verify, wrong

# -- happy paths ---------------------------------------------------------------------------


def test_send_then_verify(client, sms_server):
    response = send(client, purpose="login")
    assert response.status_code == 200
    assert response.get_json() == {
        "ok": True,
        "phone": "138****8000",
        "purpose": "login",
        "expires_in": 300,
        "resend_in": 60,
        "delivery": "sent",
    }
    assert response.headers["Cache-Control"] == "no-store"
    [sms] = sms_server.sent
    assert sms.phone_numbers == ["13800138000"]
    assert sms.sign_name == "TestSign" and sms.template_code == "SMS_123456789"
    code = sms.template_param["code"]
    assert len(code) == 6 and code.isascii() and code.isdigit()
    assert sms.out_id  # every SendSms carries an OutId

    response = verify(client, code)
    assert response.status_code == 200
    body = response.get_json()
    assert body["ok"] is True and body["phone"] == E164 and body["purpose"] == "login"
    assert isinstance(body["token"], str) and code not in body["token"]


def test_purpose_defaults_to_login(client, sms_server):
    assert send(client).get_json()["purpose"] == "login"
    code = sms_server.last_code(PHONE)
    assert client.post("/sms/verify", json={"phone": PHONE, "code": code}).status_code == 200


def test_form_fields_are_accepted(client, sms_server):
    response = client.post("/sms/send", data={"phone": PHONE, "purpose": "signup"})
    assert response.status_code == 200 and response.get_json()["purpose"] == "signup"
    code = sms_server.last_code(PHONE)
    response = client.post("/sms/verify", data={"phone": PHONE, "code": code, "purpose": "signup"})
    assert response.status_code == 200


def test_token_proves_phone_and_purpose_once(app, client, sms_server):
    send(client, purpose="signup")
    token = verify(client, sms_server.last_code(PHONE), purpose="signup").get_json()["token"]
    with app.app_context():
        from flask_smscode import InvalidToken

        with pytest.raises(InvalidToken):
            check_token(token, purpose="login")  # wrong purpose; does not use it up
        verified = check_token(token, purpose="signup", phone="+86 138 0013 8000")
        assert (verified.phone, verified.purpose) == (E164, "signup")
        with pytest.raises(InvalidToken, match="already been used"):
            check_token(token, purpose="signup")
        with pytest.raises(InvalidToken):
            check_token(token[:-2] + "xx")


def test_code_is_single_use(client, sms_server):
    send(client)
    code = sms_server.last_code(PHONE)
    assert verify(client, code).status_code == 200
    assert_error(verify(client, code), 400, "code_expired")


def test_blueprint_prefix_can_be_changed(make_app, sms_server):
    app = make_app(register=False)
    app.register_blueprint(sms_bp, url_prefix="/api/v1/sms")
    client = app.test_client()
    assert client.post("/api/v1/sms/send", json={"phone": PHONE}).status_code == 200
    assert client.post("/sms/send", json={"phone": PHONE}).status_code == 404


def test_blueprint_on_two_apps_with_different_configs(make_app, sms_server):
    four = make_app(SMSCODE_CODE_LENGTH=4, SMSCODE_PURPOSES=["login"]).test_client()
    eight = make_app(SMSCODE_CODE_LENGTH=8, SMSCODE_CODE_TTL_SECONDS=120).test_client()
    assert send(four).get_json()["expires_in"] == 300
    assert len(sms_server.last_code(PHONE)) == 4
    assert_error(send(four, "13900139000", purpose="signup"), 400, "invalid_request")
    assert send(eight).get_json()["expires_in"] == 120
    code = sms_server.last_code(PHONE)
    assert len(code) == 8
    assert verify(eight, code).status_code == 200


# -- invalid_request -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {},  # missing phone
        {"phone": 13800138000},  # wrong type
        {"phone": ["13800138000"]},
        {"phone": None},
        {"phone": PHONE, "purpose": "launch"},  # unknown purpose
        {"phone": PHONE, "purpose": 1},
        {"phone": PHONE, "purpose": ""},
    ],
)
def test_send_invalid_request(client, sms_server, body):
    assert_error(client.post("/sms/send", json=body), 400, "invalid_request")
    assert sms_server.sent == []


@pytest.mark.parametrize("raw", [b"[1, 2]", b'"13800138000"', b"{not json", b"null", b"42"])
def test_body_not_an_object(client, raw):
    response = client.post("/sms/send", data=raw, content_type="application/json")
    assert_error(response, 400, "invalid_request")


def test_empty_body(client):
    assert_error(client.post("/sms/send"), 400, "invalid_request")
    assert_error(client.post("/sms/verify"), 400, "invalid_request")


@pytest.mark.parametrize(
    "code",
    [
        "12345",
        "1234567",
        "12a456",
        " 123456",
        "123456 ",
        "",
        "١٢٣٤٥٦",  # Arabic-Indic digits: str.isdigit() is true
        "１２３４５６",  # full-width digits
        "12.456",
        "-12345",
    ],
)
def test_malformed_code_costs_nothing(client, sms_server, code):
    send(client)
    real = sms_server.last_code(PHONE)
    for _ in range(7):  # more than SMSCODE_MAX_ATTEMPTS
        assert_error(verify(client, code), 400, "invalid_request")
    assert verify(client, real).status_code == 200


def test_code_of_wrong_type(client, sms_server):
    send(client)
    response = client.post("/sms/verify", json={"phone": PHONE, "code": 123456})
    assert_error(response, 400, "invalid_request")


def test_verify_missing_fields(client):
    assert_error(client.post("/sms/verify", json={"phone": PHONE}), 400, "invalid_request")
    assert_error(client.post("/sms/verify", json={"code": "123456"}), 400, "invalid_request")


def test_wrong_method_is_json(client):
    response = client.get("/sms/send")
    assert_error(response, 405, "method_not_allowed")
    assert response.headers["Allow"] == "POST, OPTIONS"


def test_options_is_json(client):
    response = client.options("/sms/verify")
    assert response.status_code == 200 and response.get_json()["ok"] is True
    assert response.headers["Allow"] == "POST, OPTIONS"


def test_failing_signal_receiver_does_not_fail_the_send(app, client, sms_server, caplog):
    from flask_smscode import code_sent

    def broken(sender, **kwargs):
        raise RuntimeError("receiver bug")

    with code_sent.connected_to(broken, app):
        response = send(client)
    assert response.status_code == 200  # the SMS went out: the client must hear so
    assert "receiver raised RuntimeError" in caplog.text


# -- phones --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "phone",
    [
        "12345",
        "abc",
        "1380013800",
        "138001380001",
        "010 1234 5678",
        "+86 10 1234 5678",
        "13800138000x",
        " ",
        "1" * 80,
    ],
)
def test_invalid_phone(client, sms_server, phone):
    assert_error(send(client, phone), 400, "invalid_phone")
    assert sms_server.sent == []


def test_invalid_phone_on_verify(client):
    assert_error(verify(client, "123456", phone="12345"), 400, "invalid_phone")


@pytest.mark.parametrize("phone", ["+1 415 555 2671", "+44 7911 123456", "+852 5123 4567"])
def test_region_not_allowed(client, sms_server, phone):
    assert_error(send(client, phone), 400, "region_not_allowed")
    assert sms_server.sent == []


def test_allowed_regions_can_be_widened(make_app, sms_server):
    client = make_app(SMSCODE_ALLOWED_REGIONS=["CN", "HK"]).test_client()
    response = send(client, "+852 5123 4567")
    assert response.status_code == 200
    assert sms_server.sent[-1].phone_numbers == ["85251234567"]  # country code + number


@pytest.mark.parametrize(
    "spelling",
    [
        "+86 138 0013 8000",
        "008613800138000",
        "8613800138000",
        "１３８００１３８０００",
        " 138-0013-8000 ",
        "+8613800138000",
        "(+86) 138 0013 8000",
    ],
)
def test_spellings_share_one_code_and_throttle(client, sms_server, spelling):
    assert send(client, PHONE).status_code == 200
    response = send(client, spelling)
    assert_error(response, 429, "throttled")
    code = sms_server.last_code(PHONE)
    assert verify(client, code, phone=spelling).status_code == 200
    assert len(sms_server.sent) == 1


# -- codes: expiry, replacement, attempts -------------------------------------------------


def test_code_expires(make_app, sms_server):
    client = make_app(SMSCODE_CODE_TTL_SECONDS=1).test_client()
    assert send(client).get_json()["expires_in"] == 1
    code = sms_server.last_code(PHONE)
    time.sleep(1.3)
    assert_error(verify(client, code), 400, "code_expired")


def test_never_sent_is_code_expired(client):
    assert_error(verify(client, "123456"), 400, "code_expired")


def test_code_is_bound_to_purpose(client, sms_server):
    send(client, purpose="signup")
    code = sms_server.last_code(PHONE)
    assert_error(verify(client, code, purpose="login"), 400, "code_expired")
    assert_error(verify(client, code, purpose="reset_password"), 400, "code_expired")
    assert verify(client, code, purpose="signup").status_code == 200


def test_code_is_bound_to_phone(client, sms_server):
    send(client)
    code = sms_server.last_code(PHONE)
    assert_error(verify(client, code, phone="13900139000"), 400, "code_expired")


def test_resend_replaces_the_code(make_app, sms_server):
    client = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0).test_client()
    send(client)
    first = sms_server.last_code(PHONE)
    send(client)
    second = sms_server.last_code(PHONE)
    if first != second:
        # The replaced code is dead: "expired", and typing it costs no attempt.
        for _ in range(6):
            assert_error(verify(client, first), 400, "code_expired")
        body = assert_error(verify(client, wrong(second)), 400, "invalid_code")
        assert body["attempts_left"] == 4
    assert verify(client, second).status_code == 200


def test_wrong_codes_count_down_then_lock(client, sms_server):
    send(client)
    code = sms_server.last_code(PHONE)
    for left in (4, 3, 2, 1):
        body = assert_error(verify(client, wrong(code)), 400, "invalid_code")
        assert body["attempts_left"] == left
    body = assert_error(verify(client, wrong(code)), 400, "invalid_code")
    assert body["attempts_left"] == 0
    response = verify(client, code)  # the right code no longer helps
    body = assert_error(response, 429, "too_many_attempts")
    assert int(response.headers["Retry-After"]) > 0
    assert body["retry_after"] == int(response.headers["Retry-After"])


def test_attempts_carry_across_resend(make_app, sms_server):
    client = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0).test_client()
    send(client)
    code = sms_server.last_code(PHONE)
    for _ in range(3):
        verify(client, wrong(code))
    send(client)  # a new code does not reset the failure count (NIST 800-63B)
    code = sms_server.last_code(PHONE)
    assert assert_error(verify(client, wrong(code)), 400, "invalid_code")["attempts_left"] == 1
    assert assert_error(verify(client, wrong(code)), 400, "invalid_code")["attempts_left"] == 0
    send(client)
    assert_error(verify(client, sms_server.last_code(PHONE)), 429, "too_many_attempts")


def test_success_resets_failures(make_app, sms_server):
    client = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0).test_client()
    send(client)
    code = sms_server.last_code(PHONE)
    for _ in range(4):
        verify(client, wrong(code))
    assert verify(client, code).status_code == 200
    send(client)
    code = sms_server.last_code(PHONE)
    assert assert_error(verify(client, wrong(code)), 400, "invalid_code")["attempts_left"] == 4


def test_failure_window_expires(make_app, sms_server):
    client = make_app(
        SMSCODE_RESEND_INTERVAL_SECONDS=0, SMSCODE_MAX_ATTEMPTS=2, SMSCODE_ATTEMPT_WINDOW_SECONDS=1
    ).test_client()
    send(client)
    code = sms_server.last_code(PHONE)
    verify(client, wrong(code))
    verify(client, wrong(code))
    assert_error(verify(client, code), 429, "too_many_attempts")
    time.sleep(1.2)
    send(client)
    assert verify(client, sms_server.last_code(PHONE)).status_code == 200


# -- per-phone throttles -------------------------------------------------------------------


def test_resend_cooldown(client, sms_server):
    assert send(client).status_code == 200
    response = send(client)
    body = assert_error(response, 429, "throttled")
    assert 0 < body["retry_after"] <= 60
    assert response.headers["Retry-After"] == str(body["retry_after"])
    assert len(sms_server.sent) == 1


def test_cooldown_is_per_phone_across_purposes(client, sms_server):
    assert send(client, purpose="login").status_code == 200
    assert_error(send(client, purpose="signup"), 429, "throttled")
    assert send(client, "13900139000", purpose="signup").status_code == 200


def test_hourly_cap(make_app, sms_server):
    client = make_app(
        SMSCODE_RESEND_INTERVAL_SECONDS=0, SMSCODE_PHONE_LIMITS="3/hour;10/day"
    ).test_client()
    for _ in range(3):
        assert send(client).status_code == 200
    response = send(client, purpose="signup")
    body = assert_error(response, 429, "throttled")
    assert 3500 < body["retry_after"] <= 3600
    assert len(sms_server.sent) == 3


def test_daily_cap(make_app, sms_server):
    client = make_app(
        SMSCODE_RESEND_INTERVAL_SECONDS=0, SMSCODE_PHONE_LIMITS="10/hour;2/day"
    ).test_client()
    assert send(client).status_code == 200
    assert send(client).status_code == 200
    assert assert_error(send(client), 429, "throttled")["retry_after"] > 3600


# -- per-IP limits -------------------------------------------------------------------------


def test_ip_send_limit(make_app, sms_server):
    client = make_app(SMSCODE_IP_SEND_LIMITS="2/minute").test_client()
    assert send(client, "13800138000").status_code == 200
    assert send(client, "13800138001").status_code == 200
    response = send(client, "13800138002")
    body = assert_error(response, 429, "throttled")
    assert 0 < body["retry_after"] <= 60 and response.headers["Retry-After"]
    # another client address has its own budget
    other = send(client, "13800138003", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other.status_code == 200
    assert len(sms_server.sent) == 3


def test_ip_verify_limit(make_app, sms_server):
    client = make_app(SMSCODE_IP_VERIFY_LIMITS="3/minute").test_client()
    for _ in range(3):
        verify(client, "123456")
    assert_error(verify(client, "123456"), 429, "throttled")


def test_forwarded_for_is_ignored_without_proxyfix(make_app, sms_server):
    client = make_app(SMSCODE_IP_SEND_LIMITS="1/minute").test_client()
    send(client, "13800138000", headers={"X-Forwarded-For": "1.1.1.1"})
    response = send(client, "13800138001", headers={"X-Forwarded-For": "2.2.2.2"})
    assert_error(response, 429, "throttled")


def test_proxyfix_gives_the_real_client_address(make_app, sms_server):
    app = make_app(SMSCODE_IP_SEND_LIMITS="1/minute")
    app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)
    client = app.test_client()
    assert send(client, "13800138000", headers={"X-Forwarded-For": "1.1.1.1"}).status_code == 200
    assert send(client, "13800138001", headers={"X-Forwarded-For": "2.2.2.2"}).status_code == 200
    assert_error(
        send(client, "13800138002", headers={"X-Forwarded-For": "2.2.2.2"}), 429, "throttled"
    )


def test_ipv6_clients_are_counted_per_64(make_app, sms_server):
    client = make_app(SMSCODE_IP_SEND_LIMITS="1/minute").test_client()
    first = send(client, "13800138000", environ_base={"REMOTE_ADDR": "2001:db8:1:2::1"})
    assert first.status_code == 200
    same_64 = send(client, "13800138001", environ_base={"REMOTE_ADDR": "2001:db8:1:2::ffff"})
    assert_error(same_64, 429, "throttled")
    other_64 = send(client, "13800138002", environ_base={"REMOTE_ADDR": "2001:db8:1:3::1"})
    assert other_64.status_code == 200


# -- test numbers --------------------------------------------------------------------------


def test_test_numbers_send_no_sms_but_follow_every_rule(make_app, sms_server):
    client = make_app(SMSCODE_TEST_NUMBERS={"+86 139 0000 0000": "246810"}).test_client()
    response = send(client, "13900000000")
    assert response.status_code == 200
    assert response.get_json()["delivery"] == "sent"  # indistinguishable from a real number
    assert sms_server.sent == []
    assert_error(send(client, "13900000000"), 429, "throttled")  # cooldown still applies
    assert (
        assert_error(verify(client, "135791", phone="13900000000"), 400, "invalid_code")[
            "attempts_left"
        ]
        == 4
    )
    assert verify(client, "246810", phone="13900000000").status_code == 200
    assert_error(verify(client, "246810", phone="13900000000"), 400, "code_expired")


def test_config_validation_happens_at_registration(make_app):
    from flask_smscode import ConfigurationError

    with pytest.raises(ConfigurationError, match="SMSCODE_CODE_TTL_SECONDS"):
        make_app(SMSCODE_CODE_TTL_SECONDS=601)
    with pytest.raises(ConfigurationError, match="SMSCODE_ALIYUN_SIGN_NAME"):
        make_app(SMSCODE_ALIYUN_SIGN_NAME=None)


def test_unknown_route_under_prefix_is_not_ours(client):
    assert client.post("/sms/nope").status_code == 404


def test_app_without_blueprint_can_use_python_api(make_app, sms_server):
    from flask_smscode import SmsCode, send_code, verify_code

    app: Flask = make_app(register=False)
    SmsCode(app)
    with app.app_context():
        result = send_code("+86 13800138000", "reset_password")
        assert (result.phone, result.purpose, result.delivery) == (E164, "reset_password", "sent")
        verified = verify_code(PHONE, sms_server.last_code(PHONE), "reset_password")
        assert check_token(verified.token, "reset_password").phone == E164
