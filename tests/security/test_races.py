"""Races over real HTTP: 40 threads released together by a barrier against a threaded server.
Each decision is one atomic step in the store, so racing wins nothing."""

from __future__ import annotations

import math
import time

from flask_smscode import get_service
from tests.helpers import PHONE
from tests.security.support import post_all, session, wrong
from tests.servers.live_server import live_server

THREADS = 40
# Per-address limits out of the way (every thread comes from 127.0.0.1), except where tested.
OPEN = {"SMSCODE_IP_SEND_LIMITS": "10000/hour", "SMSCODE_IP_VERIFY_LIMITS": "10000/hour"}
SPELLINGS = [
    PHONE,
    "+86 138 0013 8000",
    "008613800138000",
    "8613800138000",
    "138-0013-8000",
    "13800138000\u200b",
    "\u202a+86 138 0013 8000\u202c",
    "\uff11\uff13\uff18 0013 8000",
]


def _send_one(base: str, phone: str = PHONE) -> None:
    with session() as s:
        assert s.post(f"{base}/sms/send", json={"phone": phone}, timeout=10).ok


def test_racing_sends_in_every_spelling_send_one_sms(make_app, sms_server):
    app = make_app(**OPEN)
    with live_server(app) as base:
        bodies = [
            {
                "phone": SPELLINGS[i % len(SPELLINGS)],
                "purpose": ("login", "signup", "reset_password")[i % 3],
            }
            for i in range(THREADS)
        ]
        responses = post_all(f"{base}/sms/send", bodies)
    assert sorted(r.status_code for r in responses) == [200] + [429] * (THREADS - 1)
    assert {r.json()["error"] for r in responses if r.status_code == 429} == {"throttled"}
    assert len(sms_server.sent) == 1


def test_racing_right_codes_verify_once(make_app, sms_server):
    app = make_app(**OPEN)
    with live_server(app) as base:
        _send_one(base)
        code = sms_server.last_code(PHONE)
        responses = post_all(f"{base}/sms/verify", [{"phone": PHONE, "code": code}] * THREADS)
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 1 and ok[0].json()["token"]
    assert {r.json()["error"] for r in responses if r.status_code != 200} == {"code_expired"}


def test_racing_wrong_guesses_count_no_extra_attempt(make_app, sms_server):
    app = make_app(**OPEN)
    with live_server(app) as base:
        _send_one(base)
        code = sms_server.last_code(PHONE)
        bodies = [{"phone": PHONE, "code": wrong(code, i)} for i in range(1, THREADS + 1)]
        responses = post_all(f"{base}/sms/verify", bodies)
        errors = [r.json()["error"] for r in responses]
        assert errors.count("invalid_code") == 5  # SMSCODE_MAX_ATTEMPTS, not one more
        assert errors.count("too_many_attempts") == THREADS - 5
        left = sorted(r.json()["attempts_left"] for r in responses if r.status_code == 400)
        assert left == [0, 1, 2, 3, 4]
        with session() as s:  # the right code now fails too: the lock holds
            after = s.post(f"{base}/sms/verify", json={"phone": PHONE, "code": code}, timeout=10)
        assert after.status_code == 429 and after.json()["error"] == "too_many_attempts"
    assert get_service(app).status(PHONE, "login").failures == 5


def test_racing_right_and_wrong_codes_together(make_app, sms_server):
    """Half right, half wrong at once: at most one success, and never more failures counted
    than SMSCODE_MAX_ATTEMPTS."""
    app = make_app(**OPEN)
    with live_server(app) as base:
        _send_one(base)
        code = sms_server.last_code(PHONE)
        bodies = [
            {"phone": PHONE, "code": code if i % 2 else wrong(code, i)}
            for i in range(1, THREADS + 1)
        ]
        responses = post_all(f"{base}/sms/verify", bodies)
    assert sum(r.status_code == 200 for r in responses) <= 1
    assert sum(r.json().get("error") == "invalid_code" for r in responses) <= 5


def _bursts(base: str, bodies_of, count: int, every: float) -> tuple[list[int], float]:
    """``count`` bursts of THREADS requests, one every ``every`` seconds: successes per burst
    and the time spanned."""
    started = time.monotonic()
    wins = []
    for burst in range(count):
        responses = post_all(f"{base}/sms/send", bodies_of(burst))
        assert all(r.status_code in (200, 429) for r in responses), [
            r.text for r in responses if r.status_code not in (200, 429)
        ]
        wins.append(sum(r.status_code == 200 for r in responses))
        time.sleep(max(0.0, started + (burst + 1) * every - time.monotonic()))
    return wins, time.monotonic() - started


def test_phone_cap_holds_across_window_boundaries(make_app, sms_server):
    cap, window = 3, 1
    app = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0, SMSCODE_PHONE_LIMITS=f"{cap}/second", **OPEN)
    with live_server(app) as base:
        wins, spanned = _bursts(base, lambda _: [{"phone": PHONE}] * THREADS, 8, 0.3)
    # A burst may straddle one boundary (two windows); the run meets spanned/window + 1.
    assert all(w <= 2 * cap for w in wins), wins
    assert sum(wins) <= cap * (math.ceil(spanned / window) + 1), (wins, spanned)
    assert sum(wins) >= cap  # the cap was reached, not avoided
    assert len(sms_server.sent) == sum(wins)


def test_ip_cap_holds_across_window_boundaries(make_app, sms_server):
    cap, window = 5, 1
    app = make_app(SMSCODE_IP_SEND_LIMITS=f"{cap}/second", SMSCODE_PHONE_LIMITS="1000/hour")
    with live_server(app) as base:

        def bodies(burst: int) -> list[dict]:
            return [{"phone": f"1380013{burst:02d}{i:02d}"} for i in range(THREADS)]

        wins, spanned = _bursts(base, bodies, 8, 0.3)
    assert all(w <= 2 * cap for w in wins), wins
    assert sum(wins) <= cap * (math.ceil(spanned / window) + 1), (wins, spanned)
    assert sum(wins) >= cap
    assert len(sms_server.sent) == sum(wins)
