"""Every ``SMSCODE_*`` setting, its default and unit, and its validation at start-up.

Keys carry their unit in the name. Resolution order is: explicit argument >
``app.config`` > the default here. Anything out of range raises
:class:`~flask_smscode.errors.ConfigurationError` naming the key, when the blueprint is
registered (or ``SmsCode.init_app`` runs), never on the first request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import phonenumbers

from .codes import is_well_formed
from .errors import ConfigurationError, InvalidPhone, RegionNotAllowed
from .phones import normalize_phone

if TYPE_CHECKING:  # limits costs ~50 ms of imports (asyncio, wrapt): loaded on app set-up
    from limits import RateLimitItem

STORAGE_SCHEMES = ("memory", "redis", "rediss", "redis+unix", "redis+cluster", "rediss+cluster",
                   "redis+sentinel", "rediss+sentinel")
MAX_CODE_TTL_SECONDS = 600  # NIST 800-63B / OWASP ASVS 6.5.5: codes live at most 10 minutes

DEFAULTS: dict[str, Any] = {
    "SMSCODE_PURPOSES": ("login", "signup", "reset_password"),
    "SMSCODE_CODE_LENGTH": 6,
    "SMSCODE_CODE_TTL_SECONDS": 300,
    "SMSCODE_MAX_ATTEMPTS": 5,
    "SMSCODE_ATTEMPT_WINDOW_SECONDS": 900,
    "SMSCODE_RESEND_INTERVAL_SECONDS": 60,
    "SMSCODE_PHONE_LIMITS": "5/hour;10/day",
    "SMSCODE_IP_SEND_LIMITS": "20/hour;100/day",
    "SMSCODE_IP_VERIFY_LIMITS": "30/minute;300/hour",
    "SMSCODE_RATELIMIT_BACKEND": "store",
    "SMSCODE_DEFAULT_LANGUAGE": "zh",
    "SMSCODE_MESSAGES": {},
    "SMSCODE_LOCALES_DIR": None,
    "SMSCODE_STORAGE_URI": "memory://",
    "SMSCODE_STORAGE_OPTIONS": {},
    "SMSCODE_STORAGE_TIMEOUT_SECONDS": 1.0,
    "SMSCODE_KEY_PREFIX": "smscode",
    "SMSCODE_DEFAULT_REGION": "CN",
    "SMSCODE_ALLOWED_REGIONS": ("CN",),
    "SMSCODE_TEST_NUMBERS": {},
    "SMSCODE_TOKEN_TTL_SECONDS": 600,
    "SMSCODE_SECRET_KEY": None,
    "SMSCODE_SENDER": "console",
    "SMSCODE_ALIYUN_ACCESS_KEY_ID": None,
    "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": None,
    "SMSCODE_ALIYUN_SIGN_NAME": None,
    "SMSCODE_ALIYUN_TEMPLATE_CODE": None,
    "SMSCODE_ALIYUN_TEMPLATE_PARAM": "code",
    "SMSCODE_ALIYUN_REGION": "cn-hangzhou",
    "SMSCODE_ALIYUN_ENDPOINT": "dysmsapi.aliyuncs.com",
    "SMSCODE_ALIYUN_PROTOCOL": "https",
    "SMSCODE_ALIYUN_TIMEOUT_SECONDS": 5.0,
    "SMSCODE_OPENAPI_ENABLED": True,  # GET /sms/openapi.json
    # the SMS-pumping guard (guard.py) and idempotent sends (idempotency.py)
    "SMSCODE_GLOBAL_SEND_LIMITS": "",
    "SMSCODE_PREFIX_SEND_LIMITS": "100/hour",
    "SMSCODE_PREFIX_DIGITS": {"86": 7, "*": 3},
    "SMSCODE_GUARD_WINDOW_SECONDS": 3600,
    "SMSCODE_GUARD_MIN_SENDS": 20,
    "SMSCODE_GUARD_MIN_CONVERSION": 0.2,
    "SMSCODE_GUARD_BLOCK_SECONDS": 43200,
    "SMSCODE_PRE_SEND_HOOK": None,
    "SMSCODE_IDEMPOTENCY_WAIT_SECONDS": None,  # None: 2 x SMSCODE_ALIYUN_TIMEOUT_SECONDS
}


def get_setting(config: Mapping[str, Any], key: str) -> Any:
    """``config[key]`` if set (and not ``None``), else the documented default."""
    value = config.get(key)
    return DEFAULTS[key] if value is None else value


@dataclass(frozen=True)
class Limit:
    """``amount`` events per ``seconds``; parsed from Flask-Limiter's syntax."""

    amount: int
    seconds: int
    text: str

    @classmethod
    def from_item(cls, item: RateLimitItem) -> Limit:
        return cls(item.amount, item.get_expiry(), str(item))


@dataclass(frozen=True)
class Settings:
    """The validated settings of one app (one per ``register_blueprint`` / ``init_app``)."""

    purposes: tuple[str, ...]
    code_length: int
    code_ttl: int
    max_attempts: int
    attempt_window: int
    resend_interval: int
    phone_limits: tuple[Limit, ...]
    ip_send_limits: tuple[RateLimitItem, ...]
    ip_verify_limits: tuple[RateLimitItem, ...]
    storage_uri: str
    storage_options: dict[str, Any]
    storage_timeout: float
    key_prefix: str
    default_region: str
    allowed_regions: tuple[str, ...] | None
    test_numbers: dict[str, str]
    token_ttl: int
    secret: bytes = field(repr=False)
    sender: Any

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        def get(key: str) -> Any:
            return get_setting(config, key)

        purposes = get("SMSCODE_PURPOSES")
        if isinstance(purposes, str):
            purposes = [purposes]
        purposes = tuple(purposes)
        if not purposes or not all(isinstance(p, str) and p.strip() for p in purposes):
            raise ConfigurationError("SMSCODE_PURPOSES must be a non-empty list of names.")

        code_length = _int(get, "SMSCODE_CODE_LENGTH", 4, 10)
        code_ttl = _int(get, "SMSCODE_CODE_TTL_SECONDS", 1, MAX_CODE_TTL_SECONDS,
                        why=" (NIST 800-63B: codes must expire within 10 minutes)")
        max_attempts = _int(get, "SMSCODE_MAX_ATTEMPTS", 1, 100)
        attempt_window = _int(get, "SMSCODE_ATTEMPT_WINDOW_SECONDS", 1, 7 * 86400)
        resend_interval = _int(get, "SMSCODE_RESEND_INTERVAL_SECONDS", 0, 86400)
        token_ttl = _int(get, "SMSCODE_TOKEN_TTL_SECONDS", 1, 86400)

        default_region = _region(get("SMSCODE_DEFAULT_REGION"), "SMSCODE_DEFAULT_REGION")
        allowed = get("SMSCODE_ALLOWED_REGIONS")
        if isinstance(allowed, str):
            allowed = [allowed]
        if not isinstance(allowed, (list, tuple, set, frozenset)) or not allowed:
            raise ConfigurationError("SMSCODE_ALLOWED_REGIONS must be a non-empty list of "
                                     "region codes like ['CN'] (or ['*'] for every region).")
        allowed_regions = None if "*" in allowed else tuple(
            _region(r, "SMSCODE_ALLOWED_REGIONS") for r in allowed)

        secret = config.get("SMSCODE_SECRET_KEY") or config.get("SECRET_KEY")
        if not secret:
            raise ConfigurationError(
                "SECRET_KEY (or SMSCODE_SECRET_KEY) must be set: codes are stored as an HMAC "
                "keyed with it and verified-phone tokens are signed with it.")
        if isinstance(secret, str):
            secret = secret.encode()
        if not isinstance(secret, bytes):
            raise ConfigurationError("SECRET_KEY (or SMSCODE_SECRET_KEY) must be a string or "
                                     "bytes.")

        test_numbers: dict[str, str] = {}
        raw_test_numbers = get("SMSCODE_TEST_NUMBERS")
        if not isinstance(raw_test_numbers, Mapping):
            raise ConfigurationError("SMSCODE_TEST_NUMBERS must be a dict of phone -> code.")
        for raw_phone, code in raw_test_numbers.items():
            try:
                phone = normalize_phone(raw_phone, default_region, allowed_regions)
            except (InvalidPhone, RegionNotAllowed):
                raise ConfigurationError(
                    f"SMSCODE_TEST_NUMBERS: {raw_phone!r} is not an allowed mobile number.") \
                    from None
            if not is_well_formed(code, code_length):
                raise ConfigurationError(
                    f"SMSCODE_TEST_NUMBERS: the code for {raw_phone!r} must be "
                    f"{code_length} ASCII digits (SMSCODE_CODE_LENGTH).")
            test_numbers[phone] = code

        timeout = get("SMSCODE_STORAGE_TIMEOUT_SECONDS")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
                or not 0 < timeout <= 30:
            raise ConfigurationError("SMSCODE_STORAGE_TIMEOUT_SECONDS must be in (0, 30].")

        storage_uri = str(get("SMSCODE_STORAGE_URI"))
        scheme = urlsplit(storage_uri).scheme.lower()
        if scheme not in STORAGE_SCHEMES:
            raise ConfigurationError(
                f"SMSCODE_STORAGE_URI: unsupported scheme {scheme!r}; use one of "
                + ", ".join(f"{s}://" for s in STORAGE_SCHEMES) + ".")
        storage_options = get("SMSCODE_STORAGE_OPTIONS")
        if not isinstance(storage_options, Mapping):
            raise ConfigurationError("SMSCODE_STORAGE_OPTIONS must be a dict of redis.Redis "
                                     "keyword arguments.")

        return cls(
            purposes=purposes,
            code_length=code_length,
            code_ttl=code_ttl,
            max_attempts=max_attempts,
            attempt_window=attempt_window,
            resend_interval=resend_interval,
            phone_limits=tuple(Limit.from_item(i) for i in _limits(get, "SMSCODE_PHONE_LIMITS")),
            ip_send_limits=_limits(get, "SMSCODE_IP_SEND_LIMITS"),
            ip_verify_limits=_limits(get, "SMSCODE_IP_VERIFY_LIMITS"),
            storage_uri=storage_uri,
            storage_options=dict(storage_options),
            storage_timeout=float(timeout),
            key_prefix=str(get("SMSCODE_KEY_PREFIX")),
            default_region=default_region,
            allowed_regions=allowed_regions,
            test_numbers=test_numbers,
            token_ttl=token_ttl,
            secret=secret,
            sender=get("SMSCODE_SENDER"),
        )


def _region(value: Any, key: str) -> str:
    """An ISO 3166 region code phonenumbers knows ("CN", "HK", ...)."""
    region = value.upper() if isinstance(value, str) else value
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigurationError(f"{key}: {value!r} is not a region code like 'CN'.")
    return region


def _int(get: Any, key: str, low: int, high: int, why: str = "") -> int:
    value = get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{key} must be an integer from {low} to {high}{why}; "
                                 f"got {value!r}.")
    return value


def _limits(get: Any, key: str) -> tuple[RateLimitItem, ...]:
    """Parse Flask-Limiter's syntax ("5/hour;10/day"); an empty string disables the limit."""
    text = get(key)
    if not text:
        return ()
    try:
        from limits import parse_many

        items = tuple(parse_many(text))
    except ValueError:
        raise ConfigurationError(f"{key}: {text!r} is not a rate limit string "
                                 "like '5/hour;10/day'.") from None
    return items


def ceil_seconds(value: float) -> int:
    """Seconds for a Retry-After header: whole, and at least 1."""
    return max(1, math.ceil(value))
