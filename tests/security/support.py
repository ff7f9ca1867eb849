"""Helpers of the security suite: posting (test client or real HTTP, in parallel behind a
barrier), reading what an attacker would see, and checking that a refusal wrote nothing.

Everything here goes through the package's public surface (HTTP, the Python API, the
settings); the store is only inspected from outside (its operator status and, on Redis, the
keys under the app's prefix), never through its internals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier
from typing import Any

import redis
import requests
from flask import Flask

from flask_smscode import get_service
from tests.helpers import (  # re-exported: the security suite imports them from here
    ERROR_CODES as ERROR_CODES,
)
from tests.helpers import PHONE as PHONE
from tests.helpers import assert_error as assert_error
from tests.helpers import error_of as error_of
from tests.helpers import send as send
from tests.helpers import verify as verify
from tests.helpers import wrong as wrong

# Mainland mobiles used by the suite; the secrets watch checks none of them leaks unmasked.
OTHER_PHONE = "13900139000"
PHONES = (
    PHONE,
    OTHER_PHONE,
    "13700137000",
    "13600136000",
    "13500135000",
    "13300133000",
    "15800158000",
    "18600186000",
    "18800188000",
    "19900199000",
)
PURPOSES = ("login", "signup", "reset_password")

# Every throttle out of the way, for tests about something else.
RELAXED = {
    "SMSCODE_RESEND_INTERVAL_SECONDS": 0,
    "SMSCODE_PHONE_LIMITS": "1000/hour",
    "SMSCODE_IP_SEND_LIMITS": "10000/hour",
    "SMSCODE_IP_VERIFY_LIMITS": "10000/hour",
}


# -- state seen from outside -------------------------------------------------------------


def assert_untouched(
    app: Flask, phones: Iterable[str] = PHONES, redis_url: str | None = None
) -> None:
    """No code, failure, cooldown or send count exists for ``phones`` (any purpose) and, on
    Redis, no key under the app's prefix but the per-client-address counters."""
    service = get_service(app)
    with app.app_context():
        for phone in phones:
            for purpose in service.settings.purposes:
                status = service.status(phone, purpose)
                assert status.code_ttl == 0 and status.failures == 0, (phone, status)
                assert status.cooldown == 0 and not any(status.sends.values()), (phone, status)
    if redis_url is not None and service.settings.storage_uri.startswith("redis"):
        prefix = service.settings.key_prefix
        client = redis.Redis.from_url(redis_url)
        try:
            keys = [k.decode() for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
        finally:
            client.close()
        # The per-IP budget and the operators' hourly counters (a per-IP refusal is counted
        # as one, stores/stats.py) are all that may exist: nothing of any phone.
        allowed = (f"{prefix}:ip:", f"{prefix}:stats:")
        assert [k for k in keys if not k.startswith(allowed)] == [], keys


def redis_url_of(request: Any) -> str | None:
    """The Redis of a test parametrised over stores, or None on memory://."""
    if request.node.callspec.params.get("store_uri") == "redis":
        return str(request.getfixturevalue("redis_url"))
    return None


# -- the daily bound on guesses, from the settings ---------------------------------------


def daily_sends(app: Flask) -> int:
    """The most codes one phone can be sent in any 24 hours: its caps (fixed windows, so a
    24-hour span can meet one window more than fit in it) and its resend interval."""
    s = get_service(app).settings
    bounds = [limit.amount * (math.ceil(86400 / limit.seconds) + 1) for limit in s.phone_limits]
    if s.resend_interval:
        bounds.append(math.ceil(86400 / s.resend_interval) + 1)
    return min(bounds) if bounds else 86400 * 1000  # effectively unbounded


def daily_guess_bound(app: Flask) -> int:
    """The most wrong codes an attacker can submit for one phone (all purposes) in any 24 h.

    Failures are counted per phone and purpose in windows of ``attempt_window`` seconds
    (disjoint, each opened by a failure); a window holding ``max_attempts`` failures destroys
    the live code and locks verification until it ends. A code lives ``code_ttl`` seconds, so
    its life meets at most ``k = ceil(code_ttl / attempt_window) + 1`` windows and it takes at
    most ``(k - 1) * (max_attempts - 1) + max_attempts`` wrong guesses. Wrong guesses need a
    live code, so: codes per day times that, and never more than ``max_attempts`` per window
    and purpose. Defaults: min(20 * 9, 5 * 97 * 3) = 180.
    """
    s = get_service(app).settings
    k = math.ceil(s.code_ttl / s.attempt_window) + 1
    per_code = (k - 1) * (s.max_attempts - 1) + s.max_attempts
    per_windows = s.max_attempts * (math.ceil(86400 / s.attempt_window) + 1) * len(s.purposes)
    return min(daily_sends(app) * per_code, per_windows)


# -- real HTTP, in parallel --------------------------------------------------------------


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # loopback only, never through a proxy
    return s


def post_all(
    url: str, bodies: Sequence[dict[str, Any]], before: Callable[[], None] | None = None
) -> list[requests.Response]:
    """POST each body from its own thread, all released at once by a barrier."""
    barrier = Barrier(len(bodies), action=before)

    def post(body: dict[str, Any]) -> requests.Response:
        with session() as s:
            barrier.wait()
            return s.post(url, json=body, timeout=20)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(post, bodies))


def code_pattern(code: str) -> re.Pattern[str]:
    """``code`` as a whole token (not inside a longer run of letters or digits, such as a
    hex request id that happens to contain the same six digits)."""
    return re.compile(rf"(?<![0-9A-Za-z]){re.escape(code)}(?![0-9A-Za-z])")
