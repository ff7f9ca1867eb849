"""Guessing: a code takes a few wrong tries, failures survive a resend, and one phone takes a
bounded number of wrong guesses per day (stated in README, Security)."""

from __future__ import annotations

import time

from flask_smscode import get_service
from tests.helpers import PHONE
from tests.security.support import RELAXED, assert_error, daily_guess_bound, send, verify, wrong


def test_a_code_takes_max_attempts_wrong_guesses_then_dies(make_app, sms_server):
    client = make_app().test_client()
    send(client)
    code = sms_server.last_code(PHONE)
    lefts = [
        assert_error(verify(client, wrong(code, i)), 400, "invalid_code")["attempts_left"]
        for i in range(1, 6)
    ]
    assert lefts == [4, 3, 2, 1, 0]
    body = assert_error(verify(client, code), 429, "too_many_attempts")  # the right code, too
    assert body["retry_after"] > 0
    assert_error(verify(client, wrong(code, 7)), 429, "too_many_attempts")


def test_failures_are_counted_across_resends(make_app, sms_server):
    client = make_app(**RELAXED).test_client()
    send(client)
    first = sms_server.last_code(PHONE)
    for i in range(1, 4):
        assert_error(verify(client, wrong(first, i)), 400, "invalid_code")
    send(client)  # a fresh code does not give fresh attempts
    second = sms_server.last_code(PHONE)
    body = assert_error(verify(client, wrong(second, 1)), 400, "invalid_code")
    assert body["attempts_left"] == 1
    assert_error(verify(client, wrong(second, 2)), 400, "invalid_code")
    send(client)  # nor does a third: verification stays locked for the window
    assert_error(verify(client, sms_server.last_code(PHONE)), 429, "too_many_attempts")


def test_failures_for_one_purpose_do_not_unlock_through_another(make_app, sms_server):
    client = make_app(**RELAXED).test_client()
    send(client, purpose="login")
    code = sms_server.last_code(PHONE)
    for i in range(1, 6):
        verify(client, wrong(code, i))
    # The other purposes are separate codes; login stays locked whatever happens there.
    send(client, purpose="signup")
    assert verify(client, sms_server.last_code(PHONE), purpose="signup").status_code == 200
    send(client, purpose="login")
    assert_error(verify(client, sms_server.last_code(PHONE)), 429, "too_many_attempts")


def test_the_daily_bound_on_guesses_per_phone_holds(make_app, sms_server):
    """The attack at full speed on a compressed clock: codes live 1 s, windows last 1 s, three
    codes per phone per day. However the attacker times sends and guesses, the wrong guesses
    it gets in are at most the bound computed from the settings (as for the defaults)."""
    app = make_app(
        SMSCODE_CODE_TTL_SECONDS=1,
        SMSCODE_ATTEMPT_WINDOW_SECONDS=1,
        SMSCODE_MAX_ATTEMPTS=2,
        SMSCODE_RESEND_INTERVAL_SECONDS=0,
        SMSCODE_PHONE_LIMITS="3/day",
        SMSCODE_IP_VERIFY_LIMITS="100000/hour",
    )
    bound = daily_guess_bound(app)
    assert bound == (3 * 2) * (2 * 2 - 1)  # two daily windows can meet a day: 6 codes x 3
    client = app.test_client()
    guesses = sends = 0
    deadline = time.monotonic() + 4.5
    while time.monotonic() < deadline:
        for purpose in ("login", "signup", "reset_password"):
            if send(client, purpose=purpose).status_code == 200:
                sends += 1
            response = verify(client, "000000", purpose=purpose)
            while response.status_code == 400 and response.get_json()["error"] == "invalid_code":
                guesses += 1
                response = verify(client, "000000", purpose=purpose)
        time.sleep(0.05)
    assert sends == 3  # the daily cap, whatever the purpose
    assert 2 <= guesses <= bound


def test_the_default_daily_bound_is_the_one_documented(make_app):
    app = make_app()
    s = get_service(app).settings
    assert (s.max_attempts, s.attempt_window, s.code_ttl) == (5, 900, 300)
    # README, Security: at most 180 wrong guesses per phone in any 24 hours, a chance of
    # at most 180 / 10**6 = 0.018 % to hit one 6-digit code.
    assert daily_guess_bound(app) == 180
