"""Settings: documented defaults, and every bad value refused at start-up naming its key.

A misconfiguration found on the first request is found by a user; one found when the
blueprint registers is found by the deployer. Messages must name the key to fix.
"""

from __future__ import annotations

from typing import Any

import pytest
from limits import RateLimitItem

from flask_smscode.config import DEFAULTS, MAX_CODE_TTL_SECONDS, Limit, Settings, get_setting
from flask_smscode.errors import ConfigurationError
from flask_smscode.stores import MemoryStore, store_from_uri

BASE = {"SECRET_KEY": "test-secret"}


def settings(**config: Any) -> Settings:
    return Settings.from_config({**BASE, **config})


def refused(key: str, **config: Any) -> ConfigurationError:
    """Assert the config is refused with a message naming ``key``; return the error."""
    with pytest.raises(ConfigurationError) as info:
        settings(**config)
    assert key in str(info.value)
    return info.value


# The documented defaults, written out so a changed default is a deliberate test change.
DOCUMENTED = {
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
    "SMSCODE_STORAGE_MIN_REPLICAS": "auto",
    "SMSCODE_KEY_PREFIX": "smscode",
    "SMSCODE_DEFAULT_REGION": "CN",
    "SMSCODE_ALLOWED_REGIONS": ("CN",),
    "SMSCODE_TEST_NUMBERS": {},
    "SMSCODE_TOKEN_TTL_SECONDS": 600,
    "SMSCODE_SECRET_KEY": None,
    "SMSCODE_SENDER": "console",
    "SMSCODE_SENDERS_CONFIG": {},
    "SMSCODE_SENDER_ROUTES": None,
    "SMSCODE_ALIYUN_ACCESS_KEY_ID": None,
    "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": None,
    "SMSCODE_ALIYUN_SIGN_NAME": None,
    "SMSCODE_ALIYUN_TEMPLATE_CODE": None,
    "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE": None,
    "SMSCODE_ALIYUN_TEMPLATE_PARAM": "code",
    "SMSCODE_ALIYUN_REGION": "cn-hangzhou",
    "SMSCODE_ALIYUN_ENDPOINT": "dysmsapi.aliyuncs.com",
    "SMSCODE_ALIYUN_PROTOCOL": "https",
    "SMSCODE_ALIYUN_TIMEOUT_SECONDS": 5.0,
    # Alibaba PNVS (aliyun/pnvs/)
    "SMSCODE_PNVS_SIGN_NAME": None,
    "SMSCODE_PNVS_TEMPLATE_CODE": None,
    "SMSCODE_PNVS_SCHEME_NAME": None,
    "SMSCODE_PNVS_ENDPOINT": "dypnsapi.aliyuncs.com",
    "SMSCODE_PNVS_PROTOCOL": "https",
    "SMSCODE_PNVS_TIMEOUT_SECONDS": 5.0,
    "SMSCODE_OPENAPI_ENABLED": True,
    "SMSCODE_GLOBAL_SEND_LIMITS": "",
    "SMSCODE_PREFIX_SEND_LIMITS": "100/hour",
    "SMSCODE_PREFIX_DIGITS": {"86": 7, "*": 3},
    "SMSCODE_GUARD_WINDOW_SECONDS": 86400,
    "SMSCODE_GUARD_MIN_SENDS": 16,
    "SMSCODE_GUARD_MIN_CONVERSION": 0.2,
    "SMSCODE_GUARD_BLOCK_SECONDS": 43200,
    # the pumping guard's source rule and shadow mode (core/guard.py)
    "SMSCODE_GUARD_MIN_SOURCES": 3,
    "SMSCODE_GUARD_SOURCE_SENDS": 5,
    "SMSCODE_GUARD_SOURCE": None,
    "SMSCODE_GUARD_MODE": "enforce",
    "SMSCODE_PRE_SEND_HOOK": None,
    "SMSCODE_IDEMPOTENCY_WAIT_SECONDS": None,
    # cross-origin protection (core/origins.py)
    "SMSCODE_CROSS_ORIGIN_PROTECTION": True,
    "SMSCODE_TRUSTED_ORIGINS": (),
    "SMSCODE_CORS_CREDENTIALS": False,
    "SMSCODE_ALIYUN_REPORT_SECRET": None,
    "SMSCODE_ALIYUN_REPORT_ALLOWED_IPS": (),
    "SMSCODE_ALIYUN_REPORT_MAX_BYTES": 1048576,
    "SMSCODE_ALIYUN_REPORT_TTL_SECONDS": 86400,
    # Tencent Cloud SMS (tencent/settings.py) and its status callbacks (tencent/reports.py)
    "SMSCODE_TENCENT_SECRET_ID": None,
    "SMSCODE_TENCENT_SECRET_KEY": None,
    "SMSCODE_TENCENT_SDK_APP_ID": None,
    "SMSCODE_TENCENT_SIGN_NAME": None,
    "SMSCODE_TENCENT_TEMPLATE_ID": None,
    "SMSCODE_TENCENT_INTL_TEMPLATE_ID": None,
    "SMSCODE_TENCENT_TEMPLATE_MINUTES": False,
    "SMSCODE_TENCENT_REGION": "ap-guangzhou",
    "SMSCODE_TENCENT_ENDPOINT": "sms.tencentcloudapi.com",
    "SMSCODE_TENCENT_PROTOCOL": "https",
    "SMSCODE_TENCENT_TIMEOUT_SECONDS": 5.0,
    "SMSCODE_TENCENT_REPORT_SECRET": None,
    "SMSCODE_TENCENT_REPORT_ALLOWED_IPS": (),
    "SMSCODE_TENCENT_REPORT_MAX_BYTES": 1048576,
    # the message queue (aliyun/mns.py), replies and the suppression list
    "SMSCODE_ALIYUN_MNS_ACCOUNT_ID": None,
    "SMSCODE_ALIYUN_MNS_ENDPOINT": "1943695596114318.mns.cn-hangzhou.aliyuncs.com",
    "SMSCODE_ALIYUN_MNS_TOKEN_ENDPOINT": "dybaseapi.aliyuncs.com",
    "SMSCODE_ALIYUN_MNS_MESSAGE_TYPES": ("SmsReport", "SmsUp"),
    "SMSCODE_ALIYUN_MNS_REPORT_QUEUE": None,
    "SMSCODE_ALIYUN_MNS_REPLY_QUEUE": None,
    "SMSCODE_ALIYUN_MNS_WAIT_SECONDS": 10,
    "SMSCODE_ALIYUN_MNS_BATCH_SIZE": 16,
    "SMSCODE_ALIYUN_REPLY_SECRET": None,
    "SMSCODE_UNSUBSCRIBE_WORDS": (
        "TD",
        "T",
        "退订",
        "退",
        "STOP",
        "STOPALL",
        "UNSUBSCRIBE",
        "QUIT",
        "CANCEL",
        "END",
    ),
    "SMSCODE_SUPPRESS_CODES": False,
}


def test_defaults_are_the_documented_values() -> None:
    assert DEFAULTS == DOCUMENTED


@pytest.mark.parametrize("key", sorted(DOCUMENTED))
def test_get_setting_falls_back_to_the_default(key: str) -> None:
    assert get_setting({}, key) == DOCUMENTED[key]
    assert get_setting({key: None}, key) == DOCUMENTED[key]


def test_settings_from_minimal_config_use_the_defaults() -> None:
    s = settings()
    assert s.purposes == ("login", "signup", "reset_password")
    assert s.code_length == 6
    assert s.code_ttl == 300
    assert s.max_attempts == 5
    assert s.attempt_window == 900
    assert s.resend_interval == 60
    assert s.phone_limits == (Limit(5, 3600, "5 per 1 hour"), Limit(10, 86400, "10 per 1 day"))
    assert [(i.amount, i.get_expiry()) for i in s.ip_send_limits] == [(20, 3600), (100, 86400)]
    assert [(i.amount, i.get_expiry()) for i in s.ip_verify_limits] == [(30, 60), (300, 3600)]
    assert all(isinstance(i, RateLimitItem) for i in s.ip_send_limits + s.ip_verify_limits)
    assert s.storage_uri == "memory://"
    assert s.storage_options == {}
    assert s.storage_timeout == 1.0
    assert s.key_prefix == "smscode"
    assert s.default_region == "CN"
    assert s.allowed_regions == ("CN",)
    assert s.test_numbers == {}
    assert s.token_ttl == 600
    assert s.secret == b"test-secret"
    assert s.sender == "console"


def test_secret_is_not_in_the_repr() -> None:
    """Settings get logged and printed in tracebacks; the HMAC key must not."""
    assert "test-secret" not in repr(settings())


def test_limit_string_is_parsed_into_limits() -> None:
    s = settings(SMSCODE_PHONE_LIMITS="3/minute;7 per 2 hours")
    assert s.phone_limits == (Limit(3, 60, "3 per 1 minute"), Limit(7, 7200, "7 per 2 hour"))
    first = s.phone_limits[0]
    assert (first.amount, first.seconds) == (3, 60)


def test_limit_from_item_uses_the_window_in_seconds() -> None:
    from limits import parse

    assert Limit.from_item(parse("10/day")) == Limit(10, 86400, "10 per 1 day")


def test_empty_limit_string_disables_the_limit() -> None:
    s = settings(SMSCODE_PHONE_LIMITS="", SMSCODE_IP_SEND_LIMITS="", SMSCODE_IP_VERIFY_LIMITS="")
    assert s.phone_limits == s.ip_send_limits == s.ip_verify_limits == ()


@pytest.mark.parametrize("value", [3, 11, 0, -6, True, False, "6", 6.0, [6]])
def test_code_length_must_be_an_int_from_4_to_10(value: object) -> None:
    refused("SMSCODE_CODE_LENGTH", SMSCODE_CODE_LENGTH=value)


@pytest.mark.parametrize("value", [4, 10])
def test_code_length_bounds_are_inclusive(value: int) -> None:
    assert settings(SMSCODE_CODE_LENGTH=value).code_length == value


@pytest.mark.parametrize("value", [0, -1, MAX_CODE_TTL_SECONDS + 1, 3600, True, "300", 300.0])
def test_code_ttl_must_be_at_most_ten_minutes(value: object) -> None:
    refused("SMSCODE_CODE_TTL_SECONDS", SMSCODE_CODE_TTL_SECONDS=value)


def test_code_ttl_of_exactly_ten_minutes_is_allowed() -> None:
    assert MAX_CODE_TTL_SECONDS == 600
    assert settings(SMSCODE_CODE_TTL_SECONDS=600).code_ttl == 600


@pytest.mark.parametrize("value", [0, -1, 101, True, "5"])
def test_max_attempts_must_be_positive(value: object) -> None:
    refused("SMSCODE_MAX_ATTEMPTS", SMSCODE_MAX_ATTEMPTS=value)


@pytest.mark.parametrize(
    "key",
    [
        "SMSCODE_CODE_LENGTH",
        "SMSCODE_CODE_TTL_SECONDS",
        "SMSCODE_MAX_ATTEMPTS",
        "SMSCODE_ATTEMPT_WINDOW_SECONDS",
        "SMSCODE_RESEND_INTERVAL_SECONDS",
        "SMSCODE_TOKEN_TTL_SECONDS",
    ],
)
def test_bools_are_not_accepted_as_ints(key: str) -> None:
    """``True == 1`` in Python; a YAML ``yes`` must not become a one-second TTL."""
    refused(key, **{key: True})


def test_bool_is_not_accepted_as_storage_timeout() -> None:
    """Same rule for the one float setting: ``True`` is not one second."""
    refused("SMSCODE_STORAGE_TIMEOUT_SECONDS", SMSCODE_STORAGE_TIMEOUT_SECONDS=True)


def test_resend_interval_zero_is_allowed() -> None:
    """0 disables the cooldown (caps still apply)."""
    assert settings(SMSCODE_RESEND_INTERVAL_SECONDS=0).resend_interval == 0


@pytest.mark.parametrize("key", ["SMSCODE_ATTEMPT_WINDOW_SECONDS", "SMSCODE_TOKEN_TTL_SECONDS"])
def test_windows_must_be_positive(key: str) -> None:
    refused(key, **{key: 0})


@pytest.mark.parametrize(
    "key", ["SMSCODE_PHONE_LIMITS", "SMSCODE_IP_SEND_LIMITS", "SMSCODE_IP_VERIFY_LIMITS"]
)
@pytest.mark.parametrize("value", ["5/fortnight", "abc", "x/hour", "5 per", "5/hour;;oops", 5])
def test_bad_limit_strings_are_refused(key: str, value: object) -> None:
    error = refused(key, **{key: value})
    assert "5/hour;10/day" in str(error)  # tells the deployer what the syntax looks like


@pytest.mark.parametrize("value", [(), [], "", ["login", ""], ["login", "  "], [1], [None]])
def test_purposes_must_be_non_empty_names(value: object) -> None:
    refused("SMSCODE_PURPOSES", SMSCODE_PURPOSES=value)


def test_a_single_purpose_string_is_one_purpose() -> None:
    """A bare string must not become a tuple of its characters."""
    assert settings(SMSCODE_PURPOSES="login").purposes == ("login",)


@pytest.mark.parametrize(
    "config",
    [{}, {"SECRET_KEY": None}, {"SECRET_KEY": ""}, {"SECRET_KEY": "", "SMSCODE_SECRET_KEY": ""}],
)
def test_a_secret_is_required(config: dict[str, Any]) -> None:
    """Without a key the HMAC and the token signatures would be forgeable."""
    with pytest.raises(ConfigurationError) as info:
        Settings.from_config(config)
    assert "SECRET_KEY" in str(info.value)


def test_smscode_secret_key_overrides_secret_key() -> None:
    s = Settings.from_config({"SECRET_KEY": "app-secret", "SMSCODE_SECRET_KEY": "sms-secret"})
    assert s.secret == b"sms-secret"


def test_smscode_secret_key_alone_is_enough() -> None:
    assert Settings.from_config({"SMSCODE_SECRET_KEY": b"raw"}).secret == b"raw"


def test_test_numbers_are_normalised_to_e164() -> None:
    """Test numbers must match however the tester types them in the form."""
    s = settings(SMSCODE_TEST_NUMBERS={"138 0013 8000": "000000", "+86 139-0013-9000": "123456"})
    assert s.test_numbers == {"+8613800138000": "000000", "+8613900139000": "123456"}


@pytest.mark.parametrize("phone", ["010 1234 5678", "not a phone", "1380013800"])
def test_test_numbers_must_be_mobiles(phone: str) -> None:
    error = refused("SMSCODE_TEST_NUMBERS", SMSCODE_TEST_NUMBERS={phone: "123456"})
    assert phone in str(error)


def test_test_numbers_must_be_in_an_allowed_region() -> None:
    refused("SMSCODE_TEST_NUMBERS", SMSCODE_TEST_NUMBERS={"+447400123456": "123456"})
    s = settings(SMSCODE_ALLOWED_REGIONS=("gb",), SMSCODE_TEST_NUMBERS={"+447400123456": "123456"})
    assert s.test_numbers == {"+447400123456": "123456"}
    assert s.allowed_regions == ("GB",)


@pytest.mark.parametrize("code", ["12345", "1234567", 123456, "１２３４５６", "12345a"])
def test_test_number_codes_must_match_the_code_length(code: object) -> None:
    refused("SMSCODE_TEST_NUMBERS", SMSCODE_TEST_NUMBERS={"13800138000": code})


def test_test_number_code_follows_a_custom_length() -> None:
    s = settings(SMSCODE_CODE_LENGTH=4, SMSCODE_TEST_NUMBERS={"13800138000": "0000"})
    assert s.test_numbers == {"+8613800138000": "0000"}
    refused(
        "SMSCODE_TEST_NUMBERS",
        SMSCODE_CODE_LENGTH=4,
        SMSCODE_TEST_NUMBERS={"13800138000": "000000"},
    )


def test_star_allows_every_region() -> None:
    assert settings(SMSCODE_ALLOWED_REGIONS="*").allowed_regions is None
    assert settings(SMSCODE_ALLOWED_REGIONS=["CN", "*"]).allowed_regions is None


def test_empty_allowed_regions_is_refused() -> None:
    refused("SMSCODE_ALLOWED_REGIONS", SMSCODE_ALLOWED_REGIONS=())


@pytest.mark.parametrize("value", [0, -1, 30.5, 31, "1", float("nan"), float("inf")])
def test_storage_timeout_must_be_in_range(value: object) -> None:
    refused("SMSCODE_STORAGE_TIMEOUT_SECONDS", SMSCODE_STORAGE_TIMEOUT_SECONDS=value)


@pytest.mark.parametrize("value", [0.05, 1, 30])
def test_storage_timeout_in_range_is_a_float(value: float) -> None:
    s = settings(SMSCODE_STORAGE_TIMEOUT_SECONDS=value)
    assert s.storage_timeout == float(value)
    assert isinstance(s.storage_timeout, float)


@pytest.mark.parametrize(
    "uri",
    [
        "mongodb://localhost",
        "memcached://localhost:11211",
        "http://localhost",
        "localhost:6379",
        "",
    ],
)
def test_unsupported_storage_scheme_is_refused(uri: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        store_from_uri(uri)
    assert "SMSCODE_STORAGE_URI" in str(info.value)
    assert "redis://" in str(info.value)  # names what would work


def test_memory_scheme_builds_a_memory_store() -> None:
    store = store_from_uri(settings().storage_uri, key_prefix="p")
    assert isinstance(store, MemoryStore)
    assert store.keys.prefix == "p"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SMSCODE_DEFAULT_REGION", "XX"),  # not a region: every national number would fail
        ("SMSCODE_DEFAULT_REGION", "china"),
        ("SMSCODE_ALLOWED_REGIONS", ["XX"]),
        ("SMSCODE_ALLOWED_REGIONS", [None]),
        ("SMSCODE_TEST_NUMBERS", ["13800138000"]),
        ("SMSCODE_STORAGE_OPTIONS", "socket_keepalive"),
    ],
)
def test_unknown_or_wrong_typed_values_are_refused_naming_the_key(key: str, value: object) -> None:
    """The module promises a ConfigurationError naming the key for anything out of range,
    not a bare AttributeError/ValueError, and not a silent setting that fails per request."""
    refused(key, **{key: value})
