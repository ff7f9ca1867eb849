"""The one configuration shared by the app under gunicorn and the driver's own instance.

Both must agree on the secret (codes are stored as HMACs keyed from it), the key prefix and
the Redis: the driver seeds codes in-process, gunicorn's workers verify them.
"""

from __future__ import annotations

from typing import Any

SECRET_KEY = "bench-secret-key-not-for-production"
PURPOSE = "login"
BASE_TTL_SECONDS = 300  # hand-written baseline: code lifetime
BASE_MAX_FAILURES = 5  # hand-written baseline: wrong codes before it refuses
BASE_FAIL_WINDOW_SECONDS = 900
BASE_TOKEN_TTL_SECONDS = 600  # careful baseline: lifetime of its signed token


def app_config(
    redis_url: str, prefix: str, provider_endpoint: str, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """flask-smscode as a production app would run it, except two things: the provider is
    the loopback server over HTTP, and the per-IP and per-number-block limits are raised so
    high that the load generator (one address, sequential numbers) is never throttled —
    they are still counted on every request, so their cost is measured. Each phone gets one
    send and at most one wrong code, so the per-phone limits keep their defaults."""
    return {
        "SECRET_KEY": SECRET_KEY,
        "SMSCODE_STORAGE_URI": redis_url,
        "SMSCODE_KEY_PREFIX": prefix,
        "SMSCODE_SENDER": "aliyun",
        "SMSCODE_ALIYUN_ACCESS_KEY_ID": "test-key-id",
        "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": "test-key-secret",
        "SMSCODE_ALIYUN_SIGN_NAME": "TestSign",
        "SMSCODE_ALIYUN_TEMPLATE_CODE": "SMS_123456789",
        "SMSCODE_ALIYUN_ENDPOINT": provider_endpoint,
        "SMSCODE_ALIYUN_PROTOCOL": "http",
        "SMSCODE_IP_SEND_LIMITS": "10000000/hour",
        "SMSCODE_IP_VERIFY_LIMITS": "10000000/hour",
        # The SMS-pumping guard: thousands of sends to one number block (1380000xxxx...)
        # with few verifies is exactly what it stops. Counted, never reached.
        "SMSCODE_PREFIX_SEND_LIMITS": "10000000/hour",
        "SMSCODE_GUARD_MIN_SENDS": 1_000_000,
        # One address leaving thousands of codes unverified in one block is what the source
        # rule refuses (core/guard.py); counted, never reached.
        "SMSCODE_GUARD_SOURCE_SENDS": 1_000_000,
        # ``extra``: what one figure changes (a short code TTL for the memory left after
        # expiry, SMSCODE_STORAGE_MIN_REPLICAS for the durability figure).
        **(extra or {}),
    }


def base_code_key(prefix: str, phone: str) -> str:
    """Hand-written baseline: the plain code of a phone (what tutorials store)."""
    return f"{prefix}:base:code:{phone}"


def base_fail_key(prefix: str, phone: str) -> str:
    return f"{prefix}:base:fail:{phone}"


def careful_key(prefix: str, phone: str) -> str:
    """Careful hand-written baseline: one hash per phone (field ``c`` the code's HMAC,
    ``f`` the failures), living as long as the code."""
    return f"{prefix}:careful:{phone}"


def careful_hash(phone: str, code: str) -> str:
    """The careful baseline stores what the package stores: an HMAC of phone and code
    keyed with the app's secret, never the code itself."""
    import hashlib
    import hmac

    return hmac.new(SECRET_KEY.encode(), f"{phone}:{code}".encode(), hashlib.sha256).hexdigest()


def quiet_package_logs() -> None:
    """As in every earlier run of this benchmark, the package's INFO lines are not written
    (it wires a default handler in an app without a logging config, so this is now said
    explicitly). The figures compare request paths; a log line per request costs the same
    to any implementation that writes one."""
    import logging

    logging.getLogger("flask_smscode").setLevel(logging.WARNING)
