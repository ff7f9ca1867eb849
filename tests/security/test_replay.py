"""Replay and binding: a code works once, for the newest send, for its own phone and purpose;
a verified-phone token works once, unaltered, in time, for its own phone and purpose."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from flask_smscode import InvalidToken, check_token
from tests.helpers import E164, PHONE
from tests.security.support import OTHER_PHONE, RELAXED, assert_error, send, verify


def _token(client, sms_server, phone=PHONE, purpose="login") -> str:
    assert send(client, phone, purpose=purpose).status_code == 200
    response = verify(client, sms_server.last_code(phone), phone=phone, purpose=purpose)
    assert response.status_code == 200, response.get_json()
    return str(response.get_json()["token"])


def _code_unlike(client, sms_server, other: str, phone=PHONE, purpose="login") -> str:
    """Send until the live code differs from ``other`` (equal one time in a million)."""
    while True:
        assert send(client, phone, purpose=purpose).status_code == 200
        code = sms_server.last_code(phone)
        if code != other:
            return code


def _refused(app, watch, token, *args, reason=None, **kwargs) -> None:
    with app.app_context(), pytest.raises(InvalidToken) as info:
        check_token(token, *args, **kwargs)
    watch.exception(info.value)
    if reason is not None:
        assert info.value.key == reason


# -- codes -------------------------------------------------------------------------------


def test_a_used_code_is_refused(make_app, sms_server):
    client = make_app().test_client()
    send(client)
    code = sms_server.last_code(PHONE)
    assert verify(client, code).status_code == 200
    assert_error(verify(client, code), 400, "code_expired")


def test_a_replaced_code_is_refused_and_costs_no_attempt(make_app, sms_server):
    client = make_app(**RELAXED).test_client()
    send(client)
    old = sms_server.last_code(PHONE)
    new = _code_unlike(client, sms_server, old)
    assert_error(verify(client, old), 400, "code_expired")
    assert verify(client, new).status_code == 200


def test_another_phones_code_does_not_verify(make_app, sms_server):
    client = make_app(**RELAXED).test_client()
    send(client, OTHER_PHONE)
    theirs = sms_server.last_code(OTHER_PHONE)
    _code_unlike(client, sms_server, theirs, PHONE)
    assert_error(verify(client, theirs, phone=PHONE), 400, "invalid_code")
    # With no live code at all, another phone's code finds nothing to match.
    send(client, "13700137000")
    assert_error(
        verify(client, sms_server.last_code("13700137000"), phone="13600136000"),
        400,
        "code_expired",
    )


def test_another_purposes_code_does_not_verify(make_app, sms_server):
    client = make_app(**RELAXED).test_client()
    send(client, purpose="signup")
    signup = sms_server.last_code(PHONE)
    assert_error(verify(client, signup, purpose="login"), 400, "code_expired")
    _code_unlike(client, sms_server, signup, purpose="login")
    assert_error(verify(client, signup, purpose="login"), 400, "invalid_code")
    assert verify(client, signup, purpose="signup").status_code == 200


# -- tokens ------------------------------------------------------------------------------


def test_a_token_works_once(make_app, sms_server, secrets_watch):
    app = make_app()
    token = _token(app.test_client(), sms_server)
    with app.app_context():
        assert check_token(token, "login").phone == E164
    _refused(app, secrets_watch, token, "login", reason="invalid_token.used")


def test_a_used_token_fails_a_peek(make_app, sms_server, secrets_watch):
    app = make_app()
    token = _token(app.test_client(), sms_server)
    with app.app_context():
        assert check_token(token, "login", consume=False).phone == E164  # a peek: not used
        assert check_token(token, "login").phone == E164
    _refused(app, secrets_watch, token, "login", consume=False, reason="invalid_token.used")


def test_a_forged_or_altered_token_is_refused(make_app, sms_server, secrets_watch):
    app = make_app()
    token = _token(app.test_client(), sms_server)
    forger = URLSafeTimedSerializer("not-the-app-secret", salt="flask-smscode.verified-phone")
    forged = forger.dumps({"phone": "+8613900139000", "purpose": "login", "id": "x" * 32})
    head, _, signature = token.rpartition(".")
    altered = f"{head}.{signature[:-2]}{'AA' if signature[-2:] != 'AA' else 'BB'}"
    for bad in (forged, altered, token + "x", "", "a" * 5000, token.upper()):
        _refused(app, secrets_watch, bad, "login")
    # Another app (another secret) does not accept this app's tokens either.
    other = make_app(SECRET_KEY="another-secret")
    _refused(other, secrets_watch, token, "login")
    with app.app_context():
        assert check_token(token, "login").phone == E164  # none of that used it up


def test_an_expired_token_is_refused(make_app, sms_server, secrets_watch):
    app = make_app(SMSCODE_TOKEN_TTL_SECONDS=1)
    token = _token(app.test_client(), sms_server)
    time.sleep(2.1)
    _refused(app, secrets_watch, token, "login", consume=False, reason="invalid_token.expired")
    _refused(app, secrets_watch, token, "login", reason="invalid_token.expired")


def test_a_token_for_another_purpose_or_phone_is_refused_and_not_used_up(
    make_app, sms_server, secrets_watch
):
    app = make_app()
    token = _token(app.test_client(), sms_server, purpose="signup")
    _refused(app, secrets_watch, token, "login", reason="invalid_token.purpose")
    _refused(app, secrets_watch, token, "reset_password", reason="invalid_token.purpose")
    _refused(app, secrets_watch, token, "signup", phone=OTHER_PHONE, reason="invalid_token.phone")
    _refused(app, secrets_watch, token, "signup", phone="not a phone", reason="invalid_token.phone")
    with app.app_context():
        assert check_token(token, "signup", phone="+86 138 0013 8000").purpose == "signup"
