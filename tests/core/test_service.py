"""flask_smscode/service.py through its Python API, unit by unit, with a real app.

Each test runs on ``memory://`` and on a private Redis (the ``make_app`` fixture), with the
real ``aliyun`` sender talking to the loopback Dysmsapi server, which checks signatures.
The HTTP layer is covered in tests/web/test_blueprint.py; here nothing goes through a view.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_smscode import extension as service_module
from flask_smscode.core.results import SendResult, VerifyResult
from flask_smscode.core.service import SmsCodeService
from flask_smscode.errors import (
    CodeExpired,
    IdempotencyKeyReused,
    InvalidCode,
    InvalidPhone,
    InvalidRequest,
    InvalidToken,
    RegionNotAllowed,
    Throttled,
    TooManyAttempts,
)
from flask_smscode.extension import (
    SmsCode,
    check_token,
    get_service,
    init_app,
    send_code,
    verify_code,
)
from flask_smscode.signals import code_sent, code_verified, verification_failed
from tests.helpers import E164, PHONE
from tests.servers.dysmsapi_server import DysmsapiServer

OTHER = "13800138001"  # a second mainland number
OTHER_E164 = "+8613800138001"
THIRD = "13900139000"

AppFactory = Callable[..., Flask]


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


@pytest.fixture
def svc(app: Flask) -> Iterator[SmsCodeService]:
    """The app's service, used inside an app context (as a view would)."""
    with app.app_context():
        yield get_service()


def wrong(code: str) -> str:
    """A well-formed code that is not ``code``."""
    return "".join(str((int(d) + 1) % 10) for d in code)


# -- construction -------------------------------------------------------------------------


def _config(**overrides: Any) -> dict[str, Any]:
    return {"SECRET_KEY": "test-secret-key", "SMSCODE_STORAGE_URI": "memory://", **overrides}


def _built(config: dict[str, Any], **flags: bool) -> list[str]:
    """Build a service and return the texts of the UserWarnings it raised."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        service = SmsCodeService(config, **flags)
    service.store.close()
    return [str(w.message) for w in caught if issubclass(w.category, UserWarning)]


def test_memory_store_and_console_sender_warn_in_production() -> None:
    texts = _built(_config(SMSCODE_SENDER="console"))
    assert len(texts) == 2
    assert any("in-memory store" in t and "SMSCODE_STORAGE_URI" in t for t in texts)
    assert any("console sender" in t and "SMSCODE_SENDER" in t for t in texts)


@pytest.mark.parametrize("flags", [{"testing": True}, {"debug": True}])
def test_no_warnings_in_testing_or_debug(flags: dict[str, bool]) -> None:
    assert _built(_config(SMSCODE_SENDER="console"), **flags) == []


def test_redis_with_aliyun_does_not_warn(
    redis_url: str, aliyun_config: dict[str, Any], key_prefix: str
) -> None:
    config = _config(SMSCODE_STORAGE_URI=redis_url, SMSCODE_KEY_PREFIX=key_prefix, **aliyun_config)
    assert _built(config) == []


def test_console_sender_on_redis_warns_only_about_the_sender(
    redis_url: str, key_prefix: str
) -> None:
    texts = _built(
        _config(
            SMSCODE_STORAGE_URI=redis_url, SMSCODE_KEY_PREFIX=key_prefix, SMSCODE_SENDER="console"
        )
    )
    assert len(texts) == 1 and "console sender" in texts[0]


def test_service_holds_settings_limits_and_sender_names(svc: SmsCodeService) -> None:
    assert tuple(svc.sender_names) == ("aliyun",)
    assert [limit.text for limit in svc.ip_limits["send"]] == ["20 per 1 hour", "100 per 1 day"]
    assert [limit.amount for limit in svc.ip_limits["verify"]] == [30, 300]
    assert svc.flask_limiter is None  # the store counts per-IP limits by default
    # the idempotency wait defaults to twice the provider timeout (2 s in conftest)
    assert svc.idempotency_wait == 4.0


# -- check_purpose and normalize ----------------------------------------------------------


def test_check_purpose(svc: SmsCodeService) -> None:
    assert svc.check_purpose(None) == "login"  # None means the default purpose
    assert svc.check_purpose("signup") == "signup"
    for bad in ("nope", "", "LOGIN", 5, ["login"], b"login"):
        with pytest.raises(InvalidRequest) as info:
            svc.check_purpose(bad)
        assert info.value.key == "invalid_request.purpose"
        assert info.value.extra["field"] == "purpose"
        assert "login, signup, reset_password" in info.value.message


def test_default_purpose_must_be_configured(make_app: AppFactory) -> None:
    app = make_app(SMSCODE_PURPOSES=("signup",))
    with app.app_context():
        with pytest.raises(InvalidRequest) as info:
            get_service().check_purpose(None)
    assert info.value.params == {"purposes": "signup"}


def test_normalize(svc: SmsCodeService) -> None:
    for spelling in (PHONE, E164, "+86 138 0013 8000", "138-0013-8000"):
        assert svc.normalize(spelling) == E164
    for missing in (None, ""):
        with pytest.raises(InvalidRequest) as info:
            svc.normalize(missing)
        assert info.value.key == "invalid_request.required"
        assert info.value.extra["field"] == "phone"
    with pytest.raises(InvalidRequest) as info:
        svc.normalize(13800138000)
    assert info.value.key == "invalid_request.not_string"
    with pytest.raises(InvalidPhone):
        svc.normalize("not a phone")
    with pytest.raises(RegionNotAllowed):
        svc.normalize("+14155552671")  # a valid US number; only CN is allowed


# -- send ---------------------------------------------------------------------------------


def test_send_result_and_the_sms(svc: SmsCodeService, sms_server: DysmsapiServer) -> None:
    result = svc.send(PHONE, "signup")
    assert isinstance(result, SendResult)
    assert (
        result.phone,
        result.purpose,
        result.expires_in,
        result.resend_in,
        result.delivery,
        result.replayed,
    ) == (E164, "signup", 300, 60, "sent", False)
    assert result.masked_phone == "138****8000"
    assert result.as_json() == {
        "ok": True,
        "phone": "138****8000",
        "purpose": "signup",
        "expires_in": 300,
        "resend_in": 60,
        "delivery": "sent",
    }
    code = sms_server.last_code(PHONE)
    assert len(code) == 6 and code.isdigit()
    assert len(sms_server.messages_to(PHONE)) == 1
    # the code in the SMS is the live one, bound to its purpose
    with pytest.raises(CodeExpired):
        svc.verify(PHONE, code, "login")
    assert svc.verify(PHONE, code, "signup").phone == E164


def test_send_default_purpose_is_login(svc: SmsCodeService, sms_server: DysmsapiServer) -> None:
    assert svc.send(PHONE).purpose == "login"
    assert svc.verify(PHONE, sms_server.last_code(PHONE)).purpose == "login"


def test_send_settings_shape_the_result(make_app: AppFactory, sms_server: DysmsapiServer) -> None:
    app = make_app(
        SMSCODE_CODE_TTL_SECONDS=120, SMSCODE_RESEND_INTERVAL_SECONDS=30, SMSCODE_CODE_LENGTH=8
    )
    with app.app_context():
        result = send_code(PHONE)
    assert (result.expires_in, result.resend_in) == (120, 30)
    assert len(sms_server.last_code(PHONE)) == 8


def test_second_send_waits_for_the_cooldown(
    svc: SmsCodeService, sms_server: DysmsapiServer
) -> None:
    svc.send(PHONE)
    with pytest.raises(Throttled) as info:
        svc.send(PHONE)
    assert info.value.key == "throttled.cooldown"
    assert 55 <= (info.value.retry_after or 0) <= 60
    with pytest.raises(Throttled) as other_purpose:  # the cooldown spans purposes
        svc.send(PHONE, "signup")
    assert other_purpose.value.key == "throttled.cooldown"
    assert len(sms_server.messages_to(PHONE)) == 1  # the refused sends sent nothing
    assert svc.send(OTHER).delivery == "sent"  # it is per phone


def test_send_rejects_bad_input_before_sending(
    svc: SmsCodeService, sms_server: DysmsapiServer
) -> None:
    with pytest.raises(InvalidRequest):
        svc.send(PHONE, "nope")
    with pytest.raises(InvalidPhone):
        svc.send("12345")
    with pytest.raises(RegionNotAllowed):
        svc.send("+14155552671")
    assert sms_server.sent == []


def test_test_number_sends_no_sms_but_follows_the_rules(
    make_app: AppFactory, sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_TEST_NUMBERS={OTHER: "246810"})
    with app.app_context():
        svc = get_service()
        result = svc.send(OTHER)
        assert (result.phone, result.delivery) == (OTHER_E164, "sent")
        assert sms_server.messages_to(OTHER) == [] and sms_server.requests == []
        with pytest.raises(Throttled) as info:  # the cooldown applies
            svc.send(OTHER)
        assert info.value.key == "throttled.cooldown"
        with pytest.raises(InvalidCode) as wrong_code:  # attempts are counted
            svc.verify(OTHER, "135791")
        assert wrong_code.value.attempts_left == 4
        assert svc.verify(OTHER, "246810").phone == OTHER_E164
        with pytest.raises(CodeExpired):  # and the code is used once
            svc.verify(OTHER, "246810")
        # other numbers still get a real SMS
        svc.send(PHONE)
    assert len(sms_server.messages_to(PHONE)) == 1


def test_provider_timeout_is_unconfirmed_and_keeps_the_code(
    make_app: AppFactory, sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_ALIYUN_TIMEOUT_SECONDS=0.5)
    sms_server.stall_next(2.0)  # the SMS is recorded, the answer comes too late
    with app.app_context():
        svc = get_service()
        result = svc.send(PHONE)
        assert result.delivery == "unconfirmed"
        assert result.as_json()["delivery"] == "unconfirmed"
        status = svc.status(PHONE)
        assert status.code_ttl > 0 and status.cooldown > 0  # the SMS may still arrive
        with pytest.raises(Throttled):  # so no early resend
            svc.send(PHONE)
        # the message did go out: its code verifies
        assert svc.verify(PHONE, sms_server.last_code(PHONE)).phone == E164


def test_idempotency_key_replays_the_first_answer(
    svc: SmsCodeService, sms_server: DysmsapiServer
) -> None:
    first = svc.send(PHONE, idempotency_key="req-0001-abcdef")
    again = svc.send(PHONE, idempotency_key="req-0001-abcdef")
    assert not first.replayed and again.replayed
    assert (again.phone, again.delivery, again.expires_in) == (E164, "sent", 300)
    assert len(sms_server.messages_to(PHONE)) == 1
    with pytest.raises(IdempotencyKeyReused):  # same key, different request
        svc.send(OTHER, idempotency_key="req-0001-abcdef")


def test_send_logs_one_masked_line_without_the_code(
    svc: SmsCodeService, sms_server: DysmsapiServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        svc.send(PHONE)
    lines = [r.getMessage() for r in caplog.records if "event=send " in r.getMessage()]
    assert len(lines) == 1
    assert "phone=138****8000" in lines[0] and "outcome=sent" in lines[0]
    assert sms_server.last_code(PHONE) not in caplog.text
    assert PHONE not in caplog.text


# -- verify -------------------------------------------------------------------------------


def test_verify_result(svc: SmsCodeService, sms_server: DysmsapiServer) -> None:
    svc.send(PHONE, "reset_password")
    result = svc.verify("+86 138 0013 8000", sms_server.last_code(PHONE), "reset_password")
    assert isinstance(result, VerifyResult)
    assert (result.phone, result.purpose, result.expires_in) == (E164, "reset_password", 600)
    assert result.as_json() == {
        "ok": True,
        "phone": E164,
        "purpose": "reset_password",
        "token": result.token,
        "token_expires_in": 600,
    }
    proven = svc.check_token(result.token, "reset_password")
    assert (proven.phone, proven.purpose) == (E164, "reset_password")


def test_verify_consumes_the_code(svc: SmsCodeService, sms_server: DysmsapiServer) -> None:
    svc.send(PHONE)
    code = sms_server.last_code(PHONE)
    svc.verify(PHONE, code)
    with pytest.raises(CodeExpired):
        svc.verify(PHONE, code)


def test_verify_without_a_code_is_expired(svc: SmsCodeService) -> None:
    with pytest.raises(CodeExpired) as info:
        svc.verify(PHONE, "123456")
    assert info.value.status == 400


def test_wrong_codes_count_down_then_lock(svc: SmsCodeService, sms_server: DysmsapiServer) -> None:
    svc.send(PHONE)
    code = sms_server.last_code(PHONE)
    left = []
    for _ in range(5):
        with pytest.raises(InvalidCode) as info:
            svc.verify(PHONE, wrong(code))
        left.append(info.value.attempts_left)
    assert left == [4, 3, 2, 1, 0]
    assert info.value.key == "invalid_code.last"
    with pytest.raises(TooManyAttempts) as locked:  # even the right code now
        svc.verify(PHONE, code)
    assert (locked.value.retry_after or 0) >= 1 and locked.value.status == 429
    assert svc.status(PHONE).failures == 5


@pytest.mark.parametrize(
    ("code", "key"),
    [
        (None, "invalid_request.required"),
        ("", "invalid_request.required"),
        (123456, "invalid_request.not_string"),
        ("12345", "invalid_request.code_format"),
        ("12a456", "invalid_request.code_format"),
        ("1234567", "invalid_request.code_format"),
    ],
)
def test_malformed_code_is_refused_without_an_attempt(
    svc: SmsCodeService, sms_server: DysmsapiServer, code: Any, key: str
) -> None:
    svc.send(PHONE)
    with pytest.raises(InvalidRequest) as info:
        svc.verify(PHONE, code)
    assert info.value.key == key and info.value.extra["field"] == "code"
    assert svc.status(PHONE).failures == 0  # not a guess
    assert svc.verify(PHONE, sms_server.last_code(PHONE)).phone == E164


# -- check_token --------------------------------------------------------------------------


def _token(svc: SmsCodeService, sms_server: DysmsapiServer, purpose: str = "login") -> str:
    svc.send(PHONE, purpose)
    return svc.verify(PHONE, sms_server.last_code(PHONE), purpose).token


def test_token_works_once(svc: SmsCodeService, sms_server: DysmsapiServer) -> None:
    token = _token(svc, sms_server)
    verified = svc.check_token(token)
    assert (verified.phone, verified.purpose) == (E164, "login")
    with pytest.raises(InvalidToken) as info:
        svc.check_token(token)
    assert info.value.key == "invalid_token.used"


def test_peek_does_not_use_the_token(svc: SmsCodeService, sms_server: DysmsapiServer) -> None:
    token = _token(svc, sms_server)
    assert svc.check_token(token, consume=False).phone == E164
    assert svc.check_token(token, consume=False).phone == E164
    assert svc.check_token(token).phone == E164  # still unused
    with pytest.raises(InvalidToken) as info:  # a peek sees it used now
        svc.check_token(token, consume=False)
    assert info.value.key == "invalid_token.used"


def test_token_purpose_and_phone_must_match(
    svc: SmsCodeService, sms_server: DysmsapiServer
) -> None:
    token = _token(svc, sms_server, "signup")
    cases: tuple[tuple[dict[str, Any], str], ...] = (
        ({"purpose": "login"}, "invalid_token.purpose"),
        ({"phone": OTHER}, "invalid_token.phone"),
        ({"phone": "not a phone"}, "invalid_token.phone"),
        ({"phone": "+14155552671"}, "invalid_token.phone"),
    )
    for kwargs, key in cases:
        with pytest.raises(InvalidToken) as info:
            svc.check_token(token, **kwargs)
        assert info.value.key == key
    # a mismatch does not use the token up; any spelling of the phone matches
    verified = svc.check_token(token, "signup", phone="+86 138-0013-8000")
    assert verified.purpose == "signup"


@pytest.mark.parametrize("token", ["", "garbage", None, 42, "x" * 2000])
def test_bad_tokens_are_invalid(svc: SmsCodeService, token: Any) -> None:
    with pytest.raises(InvalidToken) as info:
        svc.check_token(token)
    assert info.value.code == "invalid_token"


def test_token_of_another_secret_is_invalid(
    make_app: AppFactory, svc: SmsCodeService, sms_server: DysmsapiServer
) -> None:
    other = make_app(SECRET_KEY="another-secret")
    token = _token(svc, sms_server)
    with other.app_context(), pytest.raises(InvalidToken):
        get_service().check_token(token)


# -- per-IP limits through the Python API -------------------------------------------------


def test_client_ip_applies_the_per_ip_send_limit(
    make_app: AppFactory, sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_IP_SEND_LIMITS="2/hour", SMSCODE_RESEND_INTERVAL_SECONDS=0)
    with app.app_context():
        svc = get_service()
        svc.send(PHONE, client_ip="203.0.113.7")
        svc.send(OTHER, client_ip="203.0.113.7")
        with pytest.raises(Throttled) as info:
            svc.send(THIRD, client_ip="203.0.113.7")
        assert info.value.key == "throttled.ip" and (info.value.retry_after or 0) > 0
        assert sms_server.messages_to(THIRD) == []
        # another client, and the Python API without client_ip, are not limited by it
        assert svc.send(THIRD, client_ip="198.51.100.1").delivery == "sent"
        assert svc.send(PHONE, "signup").delivery == "sent"
        assert svc.send(OTHER, "signup").delivery == "sent"
        assert svc.send(THIRD, "signup").delivery == "sent"


def test_without_client_ip_no_per_ip_limit(
    make_app: AppFactory, sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_IP_SEND_LIMITS="1/hour", SMSCODE_IP_VERIFY_LIMITS="1/hour")
    with app.app_context():
        for phone in (PHONE, OTHER, THIRD):
            assert send_code(phone).delivery == "sent"
        for _ in range(3):
            with pytest.raises(InvalidCode):
                verify_code(PHONE, wrong(sms_server.last_code(PHONE)))


def test_client_ip_applies_the_per_ip_verify_limit(
    make_app: AppFactory, sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_IP_VERIFY_LIMITS="2/minute")
    with app.app_context():
        svc = get_service()
        svc.send(PHONE)
        code = sms_server.last_code(PHONE)
        for _ in range(2):
            with pytest.raises(InvalidCode):
                svc.verify(PHONE, wrong(code), client_ip="203.0.113.9")
        with pytest.raises(Throttled) as info:  # even the right code, from this client
            svc.verify(PHONE, code, client_ip="203.0.113.9")
        assert info.value.key == "throttled.ip"
        assert svc.verify(PHONE, code).phone == E164  # without client_ip: not limited


def test_malformed_requests_spend_the_client_budget(
    make_app: AppFactory, sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_IP_SEND_LIMITS="2/hour")
    with app.app_context():
        svc = get_service()
        for bad in ({"phone": "nonsense"}, {"phone": PHONE, "purpose": "nope"}):
            with pytest.raises((InvalidPhone, InvalidRequest)):
                svc.send(client_ip="203.0.113.5", **bad)
        with pytest.raises(Throttled) as info:  # the budget is spent: 429, not 400
            svc.send("nonsense", client_ip="203.0.113.5")
        assert info.value.key == "throttled.ip"
        with pytest.raises(Throttled):
            svc.send(PHONE, client_ip="203.0.113.5")
    assert sms_server.sent == []


def test_count_request(make_app: AppFactory) -> None:
    app = make_app(SMSCODE_IP_SEND_LIMITS="2/hour", SMSCODE_IP_VERIFY_LIMITS="1/hour")
    with app.app_context():
        svc = get_service()
        for _ in range(5):
            svc.count_request("send", None)  # no client: nothing counted, never raises
        svc.count_request("send", "203.0.113.1")
        svc.count_request("send", "203.0.113.1")
        with pytest.raises(Throttled) as info:
            svc.count_request("send", "203.0.113.1")
        assert info.value.key == "throttled.ip" and (info.value.retry_after or 0) > 0
        svc.count_request("send", "203.0.113.2")  # per client
        svc.count_request("verify", "203.0.113.1")  # per endpoint
        with pytest.raises(Throttled):
            svc.count_request("verify", "203.0.113.1")
        with pytest.raises(Throttled):  # a counted request shares the send budget
            svc.send(PHONE, client_ip="203.0.113.1")


# -- status and reset ---------------------------------------------------------------------


def test_status_after_send(svc: SmsCodeService, sms_server: DysmsapiServer) -> None:
    empty = svc.status(PHONE)
    assert (empty.code_ttl, empty.cooldown, empty.failures, empty.out_id) == (0, 0, 0, None)
    assert set(empty.sends.values()) == {0}
    svc.send(PHONE)
    status = svc.status("+86 138 0013 8000")
    assert 295 <= status.code_ttl <= 300 and 55 <= status.cooldown <= 60
    assert status.out_id == sms_server.last_sms(PHONE).out_id
    assert status.sender == "aliyun"
    assert set(status.sends.values()) == {1}
    assert svc.status(PHONE, "signup").code_ttl == 0  # per purpose
    with pytest.raises(InvalidRequest):
        svc.status(PHONE, "nope")


def test_reset_clears_code_cooldown_and_sends(
    svc: SmsCodeService, sms_server: DysmsapiServer
) -> None:
    svc.send(PHONE)
    code = sms_server.last_code(PHONE)
    assert svc.reset(E164) > 0
    status = svc.status(PHONE)
    assert (status.code_ttl, status.cooldown, status.out_id) == (0, 0, None)
    assert set(status.sends.values()) == {0}
    with pytest.raises(CodeExpired):  # the old code is gone
        svc.verify(PHONE, code)
    assert svc.send(PHONE).delivery == "sent"  # no cooldown left
    assert svc.reset(PHONE, "signup") >= 1  # the phone-wide cooldown goes with any purpose
    assert svc.status(PHONE).code_ttl > 0  # but the login code stays
    with pytest.raises(InvalidRequest):
        svc.reset(PHONE, "nope")
    with pytest.raises(InvalidPhone):
        svc.reset("nonsense")


def test_reset_of_one_purpose_keeps_the_others(
    make_app: AppFactory, sms_server: DysmsapiServer
) -> None:
    app = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0)
    with app.app_context():
        svc = get_service()
        svc.send(PHONE)
        svc.send(PHONE, "signup")
        with pytest.raises(InvalidCode):
            svc.verify(PHONE, wrong(sms_server.last_code(PHONE)), "signup")
        assert svc.reset(PHONE, "login") > 0
        assert svc.status(PHONE).code_ttl == 0
        signup = svc.status(PHONE, "signup")
        assert signup.code_ttl > 0 and signup.failures == 1  # only the named purpose
        assert svc.reset(PHONE) > 0  # every purpose
        signup = svc.status(PHONE, "signup")
        assert (signup.code_ttl, signup.failures) == (0, 0)


# -- the extension object, init_app and get_service ---------------------------------------


def test_init_app_is_idempotent(make_app: AppFactory) -> None:
    app = make_app(register=False)
    assert "smscode" not in app.extensions
    first = init_app(app)
    assert app.extensions["smscode"] is first
    assert init_app(app) is first
    assert SmsCode().init_app(app) is first
    assert get_service(app) is first
    with app.app_context():
        assert get_service() is first


def test_blueprint_registration_sets_up_the_service(app: Flask) -> None:
    assert isinstance(app.extensions["smscode"], SmsCodeService)
    assert get_service(app) is app.extensions["smscode"]


def test_sms_code_extension_delegates(make_app: AppFactory, sms_server: DysmsapiServer) -> None:
    app = make_app(register=False)
    ext = SmsCode(app)
    assert isinstance(app.extensions["smscode"], SmsCodeService)
    with app.app_context():
        sent = ext.send_code(PHONE, "signup", client_ip="203.0.113.3")
        assert (sent.phone, sent.purpose) == (E164, "signup")
        verified = ext.verify_code(PHONE, sms_server.last_code(PHONE), "signup")
        assert verified.purpose == "signup"
        assert ext.check_token(verified.token, "signup", consume=False).phone == E164
        assert ext.check_token(verified.token, "signup", phone=PHONE).phone == E164
        with pytest.raises(InvalidToken):
            ext.check_token(verified.token)


def test_module_functions_delegate(app: Flask, sms_server: DysmsapiServer) -> None:
    with app.app_context():
        assert send_code(PHONE).phone == E164
        token = verify_code(PHONE, sms_server.last_code(PHONE)).token
        assert check_token(token, "login", phone=PHONE, consume=False).phone == E164
        assert check_token(token).purpose == "login"
        with pytest.raises(InvalidToken):
            check_token(token)


def test_get_service_without_setup_raises() -> None:
    bare = Flask("bare")
    with pytest.raises(RuntimeError, match="not set up on this app"):
        get_service(bare)
    with bare.app_context():
        with pytest.raises(RuntimeError, match="not set up on this app"):
            get_service()
        with pytest.raises(RuntimeError, match="not set up on this app"):
            send_code(PHONE)
        with pytest.raises(RuntimeError, match="not set up on this app"):
            SmsCode().send_code(PHONE)


def test_module_functions_need_an_app_context() -> None:
    for call in (
        lambda: get_service(),
        lambda: send_code(PHONE),
        lambda: verify_code(PHONE, "123456"),
        lambda: check_token("t"),
    ):
        with pytest.raises(RuntimeError, match="application context"):
            call()


def test_init_app_refuses_a_bad_configuration(make_app: AppFactory) -> None:
    app = make_app(register=False, SMSCODE_IDEMPOTENCY_WAIT_SECONDS=99)
    with pytest.raises(RuntimeError, match="SMSCODE_IDEMPOTENCY_WAIT_SECONDS"):
        init_app(app)
    assert "smscode" not in app.extensions


# -- signals ------------------------------------------------------------------------------


@pytest.fixture
def received() -> Iterator[list[tuple[str, Any, dict[str, Any]]]]:
    """Every signal the service sends, as (name, sender, kwargs)."""
    seen: list[tuple[str, Any, dict[str, Any]]] = []
    receivers = []
    for signal in (code_sent, code_verified, verification_failed):

        def receiver(sender: Any, _name: str = signal.name, **kwargs: Any) -> None:
            seen.append((_name, sender, kwargs))

        signal.connect(receiver, weak=False)
        receivers.append((signal, receiver))
    yield seen
    for signal, receiver in receivers:
        signal.disconnect(receiver)


def test_signals_are_sent_with_the_app(
    app: Flask, sms_server: DysmsapiServer, received: list[tuple[str, Any, dict[str, Any]]]
) -> None:
    with app.app_context():
        svc = get_service()
        svc.send(PHONE, "signup")
        code = sms_server.last_code(PHONE)
        with pytest.raises(InvalidCode):
            svc.verify(PHONE, wrong(code), "signup")
        svc.verify(PHONE, code, "signup")
        with pytest.raises(CodeExpired):
            svc.verify(PHONE, code, "signup")
    assert received == [
        ("code-sent", app, {"phone": E164, "purpose": "signup", "delivery": "sent"}),
        (
            "verification-failed",
            app,
            {"phone": E164, "purpose": "signup", "reason": "invalid_code"},
        ),
        ("code-verified", app, {"phone": E164, "purpose": "signup"}),
        (
            "verification-failed",
            app,
            {"phone": E164, "purpose": "signup", "reason": "code_expired"},
        ),
    ]
    assert all(code not in str(kwargs) for _, _, kwargs in received)


def test_signal_of_test_numbers_and_lockout(
    make_app: AppFactory, received: list[tuple[str, Any, dict[str, Any]]]
) -> None:
    app = make_app(SMSCODE_TEST_NUMBERS={OTHER: "246810"}, SMSCODE_MAX_ATTEMPTS=1)
    with app.app_context():
        send_code(OTHER)
        with pytest.raises(InvalidCode):
            verify_code(OTHER, "111111")
        with pytest.raises(TooManyAttempts):
            verify_code(OTHER, "246810")
    assert [
        (name, kwargs.get("delivery") or kwargs.get("reason")) for name, _, kwargs in received
    ] == [
        ("code-sent", "test"),
        ("verification-failed", "invalid_code"),
        ("verification-failed", "too_many_attempts"),
    ]
    assert all(sender is app for _, sender, _ in received)


def test_refused_send_sends_no_signal(
    svc: SmsCodeService, sms_server: DysmsapiServer, received: list[tuple[str, Any, dict[str, Any]]]
) -> None:
    svc.send(PHONE)
    with pytest.raises(Throttled):
        svc.send(PHONE)
    sms_server.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
    with pytest.raises(InvalidPhone):
        svc.send(OTHER)
    assert [name for name, _, _ in received] == ["code-sent"]


def test_a_raising_receiver_does_not_fail_the_request(
    app: Flask, sms_server: DysmsapiServer, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise ValueError(f"receiver broke on {kwargs['phone']}")

    code_sent.connect(broken, weak=False)
    code_verified.connect(broken, weak=False)
    try:
        with app.app_context(), caplog.at_level(logging.ERROR, logger="flask_smscode"):
            svc = get_service()
            assert svc.send(PHONE).delivery == "sent"
            assert svc.verify(PHONE, sms_server.last_code(PHONE)).phone == E164
    finally:
        code_sent.disconnect(broken)
        code_verified.disconnect(broken)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "code-sent" in errors[0] and "ValueError" in errors[0]
    assert "code-verified" in errors[1]
    assert E164 not in caplog.text and PHONE not in caplog.text  # the message is withheld


def test_service_outside_an_app_context_sends_without_signals(
    app: Flask, sms_server: DysmsapiServer, received: list[tuple[str, Any, dict[str, Any]]]
) -> None:
    svc = get_service(app)  # no context pushed: nobody to send signals as
    assert svc.send(PHONE).delivery == "sent"
    assert svc.verify(PHONE, sms_server.last_code(PHONE)).phone == E164
    assert received == []


def test_extension_key_is_smscode() -> None:
    assert service_module.EXTENSION_KEY == "smscode"
