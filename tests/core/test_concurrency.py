"""Parallel requests over real HTTP: each decision is one atomic step in the store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import requests

from tests.helpers import PHONE
from tests.servers.live_server import live_server

PARALLEL = 20


def _post_all(url: str, bodies: list[dict]) -> list[requests.Response]:
    barrier = Barrier(len(bodies))

    def post(body: dict) -> requests.Response:
        with requests.Session() as session:
            session.trust_env = False  # never through a proxy
            barrier.wait()
            return session.post(url, json=body, timeout=10)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_parallel_sends_send_exactly_one_sms(make_app, sms_server):
    app = make_app()
    with live_server(app) as base:
        spellings = [PHONE, "+86 138 0013 8000", "008613800138000", "8613800138000"]
        bodies = [
            {"phone": spellings[i % 4], "purpose": ("login", "signup")[i % 2]}
            for i in range(PARALLEL)
        ]
        responses = _post_all(f"{base}/sms/send", bodies)
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [429] * (PARALLEL - 1)
    assert all(r.json()["error"] == "throttled" for r in responses if r.status_code == 429)
    assert len(sms_server.sent) == 1


def test_parallel_verifies_of_the_right_code_succeed_once(make_app, sms_server):
    app = make_app()
    with live_server(app) as base:
        assert requests.post(f"{base}/sms/send", json={"phone": PHONE}, timeout=10).ok
        code = sms_server.last_code(PHONE)
        responses = _post_all(f"{base}/sms/verify", [{"phone": PHONE, "code": code}] * PARALLEL)
    ok = [r for r in responses if r.status_code == 200]
    assert len(ok) == 1 and ok[0].json()["token"]
    assert {r.json()["error"] for r in responses if r.status_code != 200} == {"code_expired"}


def test_parallel_wrong_guesses_never_exceed_max_attempts(make_app, sms_server):
    app = make_app()
    with live_server(app) as base:
        requests.post(f"{base}/sms/send", json={"phone": PHONE}, timeout=10)
        code = sms_server.last_code(PHONE)
        guesses = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, PARALLEL + 1)]
        responses = _post_all(f"{base}/sms/verify", [{"phone": PHONE, "code": g} for g in guesses])
    errors = [r.json()["error"] for r in responses]
    assert errors.count("invalid_code") == 5  # SMSCODE_MAX_ATTEMPTS, not one more
    assert errors.count("too_many_attempts") == PARALLEL - 5
    left = sorted(r.json()["attempts_left"] for r in responses if r.status_code == 400)
    assert left == [0, 1, 2, 3, 4]
