"""Every ``SMSCODE_*`` setting, its default and unit, and its validation at start-up.

Keys carry their unit in the name. Resolution order is: explicit argument >
``app.config`` > the default here. Anything out of range raises
:class:`~flask_smscode.errors.ConfigurationError` naming the key, when the blueprint is
registered (or ``SmsCode.init_app`` runs), never on the first request.
"""

from __future__ import annotations

import hmac
import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from flask_smscode.codes import is_well_formed
from flask_smscode.errors import ConfigurationError, InvalidPhone, RegionNotAllowed

if TYPE_CHECKING:  # limits costs ~50 ms of imports (asyncio, wrapt): loaded on app set-up
    from limits import RateLimitItem

# The kind of a sender named in SMSCODE_SENDERS_CONFIG whose entry sets no SMSCODE_SENDER
# (a second account of the same provider is what such an entry usually is).
DEFAULT_NAMED_SENDER_KIND = "aliyun"
MAX_CODE_TTL_SECONDS = 600  # NIST 800-63B / OWASP ASVS 6.5.5: codes live at most 10 minutes


class Setting(NamedTuple):
    """One row of the settings table: the default, its unit, and what the key means."""

    default: Any
    unit: str
    meaning: str


_S = Setting
# Every SMSCODE_* key in one table: name, default, unit, one-line meaning. The README's
# configuration table says the same at more length; DEFAULTS below is derived from this.
SETTINGS: dict[str, Setting] = {
    "SMSCODE_PURPOSES": _S(
        ("login", "signup", "reset_password"),
        "names",
        "allowed purpose values; a code is bound to one",
    ),
    "SMSCODE_CODE_LENGTH": _S(6, "digits", "digits per code, 4-10"),
    "SMSCODE_CODE_TTL_SECONDS": _S(300, "seconds", "code lifetime, at most 600"),
    "SMSCODE_MAX_ATTEMPTS": _S(5, "attempts", "wrong guesses per phone and purpose"),
    "SMSCODE_ATTEMPT_WINDOW_SECONDS": _S(900, "seconds", "the failure count's window"),
    "SMSCODE_RESEND_INTERVAL_SECONDS": _S(60, "seconds", "cooldown between two sends"),
    "SMSCODE_PHONE_LIMITS": _S("5/hour;10/day", "rate string", "sends per phone"),
    "SMSCODE_IP_SEND_LIMITS": _S(
        "20/hour;100/day", "rate string", "/sms/send requests per client address"
    ),
    "SMSCODE_IP_VERIFY_LIMITS": _S(
        "30/minute;300/hour", "rate string", "/sms/verify requests per client address"
    ),
    "SMSCODE_RATELIMIT_BACKEND": _S(
        "store", "name", "who counts the per-IP limits: store or flask-limiter"
    ),
    "SMSCODE_DEFAULT_LANGUAGE": _S("zh", "language tag", "fallback language of messages"),
    "SMSCODE_MESSAGES": _S({}, "dict", "your own texts per language"),
    "SMSCODE_LOCALES_DIR": _S(None, "path", "a directory of <lang>.json message files"),
    "SMSCODE_STORAGE_URI": _S("memory://", "URI", "where codes and counters live"),
    "SMSCODE_STORAGE_OPTIONS": _S({}, "dict", "extra redis-py keyword arguments"),
    "SMSCODE_STORAGE_TIMEOUT_SECONDS": _S(1.0, "seconds", "Redis connect and read timeout"),
    "SMSCODE_STORAGE_MIN_REPLICAS": _S(
        "auto", "replicas or 'auto'", "replicas that must hold a write before a 200 (WAIT)"
    ),
    "SMSCODE_KEY_PREFIX": _S("smscode", "text", "prefix of every Redis key"),
    "SMSCODE_DEFAULT_REGION": _S(
        "CN", "ISO 3166 region", "region of numbers typed without a country code"
    ),
    "SMSCODE_ALLOWED_REGIONS": _S(
        ("CN",), "ISO 3166 regions", "regions codes may be sent to; ['*'] for all"
    ),
    "SMSCODE_TEST_NUMBERS": _S({}, "dict", "phone -> fixed code, no SMS sent"),
    "SMSCODE_TOKEN_TTL_SECONDS": _S(600, "seconds", "lifetime of the verified-phone token"),
    "SMSCODE_SECRET_KEY": _S(None, "text", "HMAC and token key (else SECRET_KEY)"),
    "SMSCODE_SENDER": _S(
        "console",
        "name(s) or dotted path",
        "who sends the codes; several (list or 'a,b'): failover in order",
    ),
    "SMSCODE_SENDERS_CONFIG": _S(
        {}, "dict name -> dict", "named senders: SMSCODE_* overrides per sender (failover)"
    ),
    "SMSCODE_SENDER_ROUTES": _S(
        None,
        "dict code -> name(s)",
        "senders per country calling code ('86', '*' = the rest); None: SMSCODE_SENDER for all",
    ),
    "SMSCODE_ALIYUN_ACCESS_KEY_ID": _S(
        None, "text", "AccessKey id (else ALIBABA_CLOUD_ACCESS_KEY_ID)"
    ),
    "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": _S(
        None, "text", "AccessKey secret (else ALIBABA_CLOUD_ACCESS_KEY_SECRET)"
    ),
    "SMSCODE_ALIYUN_SIGN_NAME": _S(None, "text", "the approved signature"),
    "SMSCODE_ALIYUN_TEMPLATE_CODE": _S(
        None, "code or dict", "one template code, or purpose -> code"
    ),
    "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE": _S(
        None,
        "code or dict",
        "international template "
        "(TemplateType 3) for numbers outside the "
        "mainland; one code, or purpose -> code",
    ),
    "SMSCODE_ALIYUN_TEMPLATE_PARAM": _S(
        "code", "variable name", "the template variable that receives the code"
    ),
    "SMSCODE_ALIYUN_REGION": _S("cn-hangzhou", "RegionId", "the API region"),
    "SMSCODE_ALIYUN_ENDPOINT": _S("dysmsapi.aliyuncs.com", "host[:port]", "the API host"),
    "SMSCODE_ALIYUN_PROTOCOL": _S("https", "https|http", "http only for a loopback endpoint"),
    "SMSCODE_ALIYUN_TIMEOUT_SECONDS": _S(
        5.0, "seconds", "read timeout of one call; connect: min(this, 3)"
    ),
    # Alibaba PNVS 号码认证服务 (aliyun/pnvs/): the AccessKey is SMSCODE_ALIYUN_ACCESS_KEY_*
    "SMSCODE_PNVS_SIGN_NAME": _S(None, "text", "the system-provided signature (赠送签名)"),
    "SMSCODE_PNVS_TEMPLATE_CODE": _S(
        None, "code or dict", "system-provided template (赠送模板); one code, or purpose -> code"
    ),
    "SMSCODE_PNVS_SCHEME_NAME": _S(None, "text", "the scheme (方案名称); None: default scheme"),
    "SMSCODE_PNVS_ENDPOINT": _S("dypnsapi.aliyuncs.com", "host[:port]", "the PNVS API host"),
    "SMSCODE_PNVS_PROTOCOL": _S("https", "https|http", "http only for a loopback endpoint"),
    "SMSCODE_PNVS_TIMEOUT_SECONDS": _S(
        5.0, "seconds", "read timeout of one call; connect: min(this, 3)"
    ),
    "SMSCODE_OPENAPI_ENABLED": _S(True, "bool", "serve GET /sms/openapi.json"),
    # the SMS-pumping guard (guard.py) and idempotent sends (idempotency.py)
    "SMSCODE_GLOBAL_SEND_LIMITS": _S("", "rate string", "sends of the whole app; '' is off"),
    "SMSCODE_PREFIX_SEND_LIMITS": _S("100/hour", "rate string", "sends per number prefix"),
    "SMSCODE_PREFIX_DIGITS": _S(
        {"86": 7, "*": 3}, "digits per calling code", "what a number prefix is"
    ),
    # A day, not an hour (issue 15): a slow drip stays under any hourly threshold; 16, not
    # 20: the fraud replay's 20 SMS per attacked block includes what leaks after a block
    # (bench/replay.py, bench/RESULTS.md "Fraud replay").
    "SMSCODE_GUARD_WINDOW_SECONDS": _S(86400, "seconds", "the conversion guard's window"),
    "SMSCODE_GUARD_MIN_SENDS": _S(16, "sends", "sends before a prefix's conversion is judged"),
    "SMSCODE_GUARD_MIN_CONVERSION": _S(0.2, "ratio", "below this share a prefix is blocked"),
    "SMSCODE_GUARD_BLOCK_SECONDS": _S(43200, "seconds", "how long a prefix stays blocked"),
    # who is behind a prefix's unverified sends, and shadow mode (core/guard.py)
    "SMSCODE_GUARD_MIN_SOURCES": _S(
        3, "sources", "distinct sources before a prefix is blocked for everyone; 0: any"
    ),
    "SMSCODE_GUARD_SOURCE_SENDS": _S(
        5, "sends", "unverified sends one source may leave in one prefix; 0: no limit"
    ),
    "SMSCODE_GUARD_SOURCE": _S(
        None, "callable or 'module:function'", "(request) -> the source key; None: client address"
    ),
    "SMSCODE_GUARD_MODE": _S(
        "enforce", "enforce|shadow", "shadow: the guard logs and counts but refuses nothing"
    ),
    "SMSCODE_PRE_SEND_HOOK": _S(
        None, "callable or 'module:function'", "run after the per-IP count, before the send"
    ),
    "SMSCODE_IDEMPOTENCY_WAIT_SECONDS": _S(
        None, "seconds", "how long a duplicate waits; None: 2 x the sender's timeout"
    ),
    # cross-origin protection of POST /sms/send and /sms/verify (core/origins.py)
    "SMSCODE_CROSS_ORIGIN_PROTECTION": _S(
        True, "bool", "refuse browser posts from other origins (403 cross_site_request)"
    ),
    "SMSCODE_TRUSTED_ORIGINS": _S(
        (), "origins", "scheme://host[:port] allowed to post cross-origin, with a CORS answer"
    ),
    "SMSCODE_CORS_CREDENTIALS": _S(
        False, "bool", "answer trusted origins Access-Control-Allow-Credentials: true"
    ),
    # delivery reports pushed by Alibaba Cloud (aliyun/reports.py, report_view.py)
    "SMSCODE_ALIYUN_REPORT_SECRET": _S(
        None, "text, 32+ of [A-Za-z0-9_-]", "path secret of POST /sms/reports/<secret>; None: off"
    ),
    "SMSCODE_ALIYUN_REPORT_ALLOWED_IPS": _S(
        (), "addresses/networks", "report sources allowed; empty: any"
    ),
    "SMSCODE_ALIYUN_REPORT_MAX_BYTES": _S(1_048_576, "bytes", "largest report body (413)"),
    "SMSCODE_ALIYUN_REPORT_TTL_SECONDS": _S(
        86400, "seconds", "how long a phone's last delivery is kept"
    ),
    # receipts and replies from Alibaba's message queue (aliyun/queue.py, validated in
    # aliyun/mns.py), replies pushed over HTTP (web/replies.py) and the suppression list
    # (core/replies.py, core/suppression.py)
    "SMSCODE_ALIYUN_MNS_ACCOUNT_ID": _S(
        None, "digits", "your account id, the <AccountId> of Alicom-Queue-<AccountId>-SmsReport"
    ),
    "SMSCODE_ALIYUN_MNS_ENDPOINT": _S(
        "1943695596114318.mns.cn-hangzhou.aliyuncs.com",
        "host[:port]",
        "the MNS endpoint of Alibaba's SMS queues (Alibaba's own, the same for every account)",
    ),
    "SMSCODE_ALIYUN_MNS_TOKEN_ENDPOINT": _S(
        "dybaseapi.aliyuncs.com", "host[:port]", "where QueryTokenForMnsQueue is called"
    ),
    "SMSCODE_ALIYUN_MNS_MESSAGE_TYPES": _S(
        ("SmsReport", "SmsUp"), "names", "queues consumed: SmsReport (receipts), SmsUp (replies)"
    ),
    "SMSCODE_ALIYUN_MNS_REPORT_QUEUE": _S(
        None, "queue name", "the SmsReport queue; None: Alicom-Queue-<AccountId>-SmsReport"
    ),
    "SMSCODE_ALIYUN_MNS_REPLY_QUEUE": _S(
        None, "queue name", "the SmsUp queue; None: Alicom-Queue-<AccountId>-SmsUp"
    ),
    "SMSCODE_ALIYUN_MNS_WAIT_SECONDS": _S(10, "seconds", "long polling of one receive, 1-30"),
    "SMSCODE_ALIYUN_MNS_BATCH_SIZE": _S(16, "messages", "messages per receive, 1-16"),
    "SMSCODE_ALIYUN_REPLY_SECRET": _S(
        None, "text, 32+ of [A-Za-z0-9_-]", "path secret of POST /sms/replies/<secret>; None: off"
    ),
    "SMSCODE_UNSUBSCRIBE_WORDS": _S(
        ("TD", "T", "退订", "退", "STOP", "STOPALL", "UNSUBSCRIBE", "QUIT", "CANCEL", "END"),
        "words",
        "a reply that is one of these (case, width, spaces, punctuation ignored) unsubscribes",
    ),
    "SMSCODE_SUPPRESS_CODES": _S(
        False, "bool", "also refuse verification codes to a suppressed (unsubscribed) number"
    ),
    # Tencent Cloud SMS (SMSCODE_SENDER = "tencent"; validated in tencent/settings.py)
    "SMSCODE_TENCENT_SECRET_ID": _S(None, "text", "SecretId (else TENCENTCLOUD_SECRET_ID)"),
    "SMSCODE_TENCENT_SECRET_KEY": _S(None, "text", "SecretKey (else TENCENTCLOUD_SECRET_KEY)"),
    "SMSCODE_TENCENT_SDK_APP_ID": _S(None, "text", "the SMS application's SdkAppId"),
    "SMSCODE_TENCENT_SIGN_NAME": _S(None, "text", "the approved signature (签名)"),
    "SMSCODE_TENCENT_TEMPLATE_ID": _S(None, "id or dict", "one template id, or purpose -> id"),
    "SMSCODE_TENCENT_INTL_TEMPLATE_ID": _S(
        None, "id or dict", "international template for numbers outside the mainland"
    ),
    "SMSCODE_TENCENT_TEMPLATE_MINUTES": _S(
        False, "bool", "the template's {2} receives the code lifetime in minutes"
    ),
    "SMSCODE_TENCENT_REGION": _S("ap-guangzhou", "region", "the API region"),
    "SMSCODE_TENCENT_ENDPOINT": _S("sms.tencentcloudapi.com", "host[:port]", "the API host"),
    "SMSCODE_TENCENT_PROTOCOL": _S("https", "https|http", "http only for a loopback endpoint"),
    "SMSCODE_TENCENT_TIMEOUT_SECONDS": _S(
        5.0, "seconds", "read timeout of one call; connect: min(this, 3)"
    ),
    "SMSCODE_TENCENT_REPORT_SECRET": _S(
        None,
        "text, 32+ of [A-Za-z0-9_-]",
        "path secret of POST /sms/reports/tencent/<secret>; None: off",
    ),
    "SMSCODE_TENCENT_REPORT_ALLOWED_IPS": _S(
        (), "addresses/networks", "Tencent report sources allowed; empty: any"
    ),
    "SMSCODE_TENCENT_REPORT_MAX_BYTES": _S(1_048_576, "bytes", "largest Tencent report body"),
}
del _S

# Key -> default, the view most code needs. A key added here instead of to SETTINGS still
# works, but belongs in the table above with its unit and meaning.
DEFAULTS: dict[str, Any] = {key: setting.default for key, setting in SETTINGS.items()}


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
    openapi_enabled: bool = True
    # "auto" or an int >= 0: see stores/redis.py (replicas a send or verify waits for).
    storage_min_replicas: int | str = "auto"

    def durability_options(self) -> dict[str, Any]:
        """The store keyword for SMSCODE_STORAGE_MIN_REPLICAS. Nothing at the default
        ("auto", RedisStore's own default too), so a third-party store class
        (stores/registry.py) is handed a keyword it may not know only when the app set it."""
        if self.storage_min_replicas == "auto":
            return {}
        return {"min_replicas": self.storage_min_replicas}

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

        code_length = parse_int(get, "SMSCODE_CODE_LENGTH", 4, 10)
        code_ttl = parse_int(
            get,
            "SMSCODE_CODE_TTL_SECONDS",
            1,
            MAX_CODE_TTL_SECONDS,
            why=" (NIST 800-63B: codes must expire within 10 minutes)",
        )
        max_attempts = parse_int(get, "SMSCODE_MAX_ATTEMPTS", 1, 100)
        attempt_window = parse_int(get, "SMSCODE_ATTEMPT_WINDOW_SECONDS", 1, 7 * 86400)
        resend_interval = parse_int(get, "SMSCODE_RESEND_INTERVAL_SECONDS", 0, 86400)
        token_ttl = parse_int(get, "SMSCODE_TOKEN_TTL_SECONDS", 1, 86400)

        default_region, allowed_regions = regions_from_config(config)

        secret = config.get("SMSCODE_SECRET_KEY") or config.get("SECRET_KEY")
        if not secret:
            raise ConfigurationError(
                "SECRET_KEY (or SMSCODE_SECRET_KEY) must be set: codes are stored as an HMAC "
                "keyed with it and verified-phone tokens are signed with it."
            )
        if isinstance(secret, str):
            secret = secret.encode()
        if not isinstance(secret, bytes):
            raise ConfigurationError(
                "SECRET_KEY (or SMSCODE_SECRET_KEY) must be a string or bytes."
            )

        test_numbers: dict[str, str] = {}
        raw_test_numbers = get("SMSCODE_TEST_NUMBERS")
        if not isinstance(raw_test_numbers, Mapping):
            raise ConfigurationError("SMSCODE_TEST_NUMBERS must be a dict of phone -> code.")
        for raw_phone, code in raw_test_numbers.items():
            try:
                from flask_smscode.phones import normalize_phone  # phonenumbers: see _region

                phone = normalize_phone(raw_phone, default_region, allowed_regions)
            except (InvalidPhone, RegionNotAllowed):
                raise ConfigurationError(
                    f"SMSCODE_TEST_NUMBERS: {raw_phone!r} is not an allowed mobile number."
                ) from None
            if not is_well_formed(code, code_length):
                raise ConfigurationError(
                    f"SMSCODE_TEST_NUMBERS: the code for {raw_phone!r} must be "
                    f"{code_length} ASCII digits (SMSCODE_CODE_LENGTH)."
                )
            test_numbers[phone] = code

        timeout = get("SMSCODE_STORAGE_TIMEOUT_SECONDS")
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not 0 < timeout <= 30
        ):
            raise ConfigurationError("SMSCODE_STORAGE_TIMEOUT_SECONDS must be in (0, 30].")
        min_replicas = get("SMSCODE_STORAGE_MIN_REPLICAS")
        if min_replicas != "auto" and (
            isinstance(min_replicas, bool) or not isinstance(min_replicas, int) or min_replicas < 0
        ):
            raise ConfigurationError(
                "SMSCODE_STORAGE_MIN_REPLICAS must be 'auto' or an int >= 0 (replicas that "
                "acknowledge a send or verify before it answers 200)."
            )

        # The scheme is the store registry's to judge (stores/registry.py), when the
        # service builds the store at start-up.
        storage_uri = str(get("SMSCODE_STORAGE_URI"))
        storage_options = get("SMSCODE_STORAGE_OPTIONS")
        if not isinstance(storage_options, Mapping):
            raise ConfigurationError(
                "SMSCODE_STORAGE_OPTIONS must be a dict of redis.Redis keyword arguments."
            )

        return cls(
            purposes=purposes,
            code_length=code_length,
            code_ttl=code_ttl,
            max_attempts=max_attempts,
            attempt_window=attempt_window,
            resend_interval=resend_interval,
            phone_limits=tuple(
                Limit.from_item(i) for i in parse_limits(get, "SMSCODE_PHONE_LIMITS")
            ),
            ip_send_limits=parse_limits(get, "SMSCODE_IP_SEND_LIMITS"),
            ip_verify_limits=parse_limits(get, "SMSCODE_IP_VERIFY_LIMITS"),
            storage_uri=storage_uri,
            storage_options=dict(storage_options),
            storage_timeout=float(timeout),
            storage_min_replicas=min_replicas,
            key_prefix=str(get("SMSCODE_KEY_PREFIX")),
            default_region=default_region,
            allowed_regions=allowed_regions,
            test_numbers=test_numbers,
            token_ttl=token_ttl,
            secret=secret,
            sender=get("SMSCODE_SENDER"),
            openapi_enabled=_bool(get, "SMSCODE_OPENAPI_ENABLED"),
        )


_REPORT_SECRET = re.compile(r"[A-Za-z0-9_-]{32,128}")


@dataclass(frozen=True)
class ReportSettings:
    """A delivery-report receiver's validated settings (``SMSCODE_ALIYUN_REPORT_*``, or
    another channel's ``<prefix>_SECRET`` / ``_ALLOWED_IPS`` / ``_MAX_BYTES``); ``secret``
    ``None`` means it is off. The delivery records' lifetime is one for every channel
    (``SMSCODE_ALIYUN_REPORT_TTL_SECONDS``): they are provider-blind."""

    secret: str | None = field(default=None, repr=False)
    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    max_bytes: int = DEFAULTS["SMSCODE_ALIYUN_REPORT_MAX_BYTES"]
    ttl_ms: int = DEFAULTS["SMSCODE_ALIYUN_REPORT_TTL_SECONDS"] * 1000

    @property
    def enabled(self) -> bool:
        return self.secret is not None

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], prefix: str = "SMSCODE_ALIYUN_REPORT"
    ) -> ReportSettings:
        secret = get_setting(config, f"{prefix}_SECRET")
        if secret is not None and (
            not isinstance(secret, str) or not _REPORT_SECRET.fullmatch(secret)
        ):
            raise ConfigurationError(
                f"{prefix}_SECRET must be 32 to 128 characters of A-Z a-z 0-9 _ - "
                "(it is a path segment; e.g. secrets.token_urlsafe(32))."
            )
        allowed = get_setting(config, f"{prefix}_ALLOWED_IPS")
        if isinstance(allowed, str):
            allowed = [allowed]
        networks = []
        try:
            for item in allowed:
                networks.append(ipaddress.ip_network(str(item), strict=False))
        except (TypeError, ValueError):
            raise ConfigurationError(
                f"{prefix}_ALLOWED_IPS must be a list of addresses or networks "
                "(e.g. ['47.96.0.0/16', '2408:4000::/32'])."
            ) from None
        max_bytes = get_setting(config, f"{prefix}_MAX_BYTES")
        ttl = get_setting(config, "SMSCODE_ALIYUN_REPORT_TTL_SECONDS")
        for key, value, low, high in (
            (f"{prefix}_MAX_BYTES", max_bytes, 1024, 64 * 1_048_576),
            ("SMSCODE_ALIYUN_REPORT_TTL_SECONDS", ttl, 60, 30 * 86400),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigurationError(
                    f"{key} must be a whole number from {low} to {high}; got {value!r}."
                )
        return cls(secret, tuple(networks), max_bytes, ttl * 1000)

    def secret_matches(self, candidate: str) -> bool:
        """Constant time: the path secret must not leak through response timing."""
        if self.secret is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "replace"), self.secret.encode())

    def source_allowed(self, address: str | None) -> bool:
        """Whether ``address`` is in the allowlist. An IPv4-mapped IPv6 address
        (``::ffff:47.96.1.1``, what a dual-stack listener reports for an IPv4 peer) is the
        IPv4 address it maps, both ways: it matches ``47.96.0.0/16``, and ``47.96.1.1``
        matches ``::ffff:47.96.0.0/112`` (issue 15: real reports were refused)."""
        if not self.allowed:
            return True
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        forms: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            forms.append(ip.ipv4_mapped)
        elif isinstance(ip, ipaddress.IPv4Address):
            forms.append(ipaddress.IPv6Address(f"::ffff:{ip}"))
        return any(form in network for form in forms for network in self.allowed)


@dataclass(frozen=True)
class ReplySettings:
    """Replies (SmsUp) and the suppression list: ``SMSCODE_ALIYUN_REPLY_SECRET`` (the HTTP
    push receiver; ``None``: off; its source allowlist and body bound are the report
    receiver's, the same Alibaba push), ``SMSCODE_UNSUBSCRIBE_WORDS`` and
    ``SMSCODE_SUPPRESS_CODES``. The words are kept as given; :mod:`flask_smscode.core.replies`
    compares them width-, case-, space- and punctuation-blind."""

    secret: str | None = field(default=None, repr=False)
    words: tuple[str, ...] = DEFAULTS["SMSCODE_UNSUBSCRIBE_WORDS"]
    suppress_codes: bool = False

    @property
    def enabled(self) -> bool:
        return self.secret is not None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ReplySettings:
        secret = get_setting(config, "SMSCODE_ALIYUN_REPLY_SECRET")
        if secret is not None and (
            not isinstance(secret, str) or not _REPORT_SECRET.fullmatch(secret)
        ):
            raise ConfigurationError(
                "SMSCODE_ALIYUN_REPLY_SECRET must be 32 to 128 characters of A-Z a-z 0-9 _ - "
                "(it is a path segment; e.g. secrets.token_urlsafe(32))."
            )
        words = get_setting(config, "SMSCODE_UNSUBSCRIBE_WORDS")
        if isinstance(words, str):
            words = [words]
        if not isinstance(words, (list, tuple, set, frozenset)) or not all(
            isinstance(w, str) and 0 < len(w.strip()) <= 32 for w in words
        ):
            raise ConfigurationError(
                "SMSCODE_UNSUBSCRIBE_WORDS must be a list of words of 1 to 32 characters "
                "(e.g. ['TD', '退订', 'STOP']; an empty list turns unsubscribing off)."
            )
        return cls(
            secret=secret,
            words=tuple(words),
            suppress_codes=_bool(lambda key: get_setting(config, key), "SMSCODE_SUPPRESS_CODES"),
        )

    def secret_matches(self, candidate: str) -> bool:
        """Constant time, as the report receiver's."""
        if self.secret is None:
            return False
        return hmac.compare_digest(candidate.encode("utf-8", "replace"), self.secret.encode())


def regions_from_config(config: Mapping[str, Any]) -> tuple[str, tuple[str, ...] | None]:
    """``SMSCODE_DEFAULT_REGION`` and ``SMSCODE_ALLOWED_REGIONS`` (``None``: every region),
    validated; the one reading of both keys (the app's settings and the Alibaba client)."""
    default_region = _region(
        get_setting(config, "SMSCODE_DEFAULT_REGION"), "SMSCODE_DEFAULT_REGION"
    )
    return default_region, allowed_regions(get_setting(config, "SMSCODE_ALLOWED_REGIONS"))


def allowed_regions(
    allowed: Any,
    key: str = "SMSCODE_ALLOWED_REGIONS",
) -> tuple[str, ...] | None:
    """A list of region codes, ``None`` when it holds the wildcard ``"*"``."""
    if isinstance(allowed, str):
        allowed = [allowed]
    if not isinstance(allowed, (list, tuple, set, frozenset)) or not allowed:
        raise ConfigurationError(
            f"{key} must be a non-empty list of region codes like "
            "['CN'] (or ['*'] for every region)."
        )
    return None if "*" in allowed else tuple(_region(r, key) for r in allowed)


def region_code(value: Any, key: str) -> str:
    """An ISO 3166 region code phonenumbers knows, upper-cased; refused naming ``key``."""
    return _region(value, key)


def _region(value: Any, key: str) -> str:
    """An ISO 3166 region code phonenumbers knows ("CN", "HK", ...)."""
    # phonenumbers (~13 ms to import) loads when settings are read, not with the module:
    # the blueprint's import line reaches this module.
    import phonenumbers

    region = value.upper() if isinstance(value, str) else value
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigurationError(f"{key}: {value!r} is not a region code like 'CN'.")
    return region


def _bool(get: Any, key: str) -> bool:
    value = get(key)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{key} must be true or false.")
    return value


def parse_int(get: Any, key: str, low: int, high: int, why: str = "") -> int:
    value = get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(
            f"{key} must be an integer from {low} to {high}{why}; got {value!r}."
        )
    return value


def parse_limits(get: Any, key: str) -> tuple[RateLimitItem, ...]:
    """Parse Flask-Limiter's syntax ("5/hour;10/day"); an empty string disables the limit."""
    text = get(key)
    if not text:
        return ()
    try:
        from limits import parse_many

        items = tuple(parse_many(text))
    except ValueError:
        raise ConfigurationError(
            f"{key}: {text!r} is not a rate limit string like '5/hour;10/day'."
        ) from None
    return items


def ceil_seconds(value: float) -> int:
    """Seconds for a Retry-After header: whole, and at least 1."""
    return max(1, math.ceil(value))
