"""The cross-origin decision (core/origins.py): Go's CrossOriginProtection, step by step, and
the validation of SMSCODE_TRUSTED_ORIGINS at start-up."""

from __future__ import annotations

import pytest

from flask_smscode.core.origins import OriginSettings, loggable_origin, normalize_origin
from flask_smscode.errors import ConfigurationError

HOST = "sms.example.com"
PROTECT = OriginSettings()
TRUSTING = OriginSettings(trusted=frozenset({"https://app.example.com"}))


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "get"])
def test_safe_methods_pass_whatever_their_headers(method):
    assert not PROTECT.refuses(method, "cross-site", "https://evil.example", HOST)


@pytest.mark.parametrize("site", ["same-origin", "none", "Same-Origin", " none "])
def test_same_origin_and_user_initiated_pass(site):
    assert not PROTECT.refuses("POST", site, "https://evil.example", HOST)


@pytest.mark.parametrize("site", ["cross-site", "same-site", "bogus"])
def test_any_other_fetch_site_is_refused_unless_trusted(site):
    assert PROTECT.refuses("POST", site, "https://evil.example", HOST)
    assert PROTECT.refuses("POST", site, None, HOST)  # no Origin: still a browser's cross post
    assert TRUSTING.refuses("POST", site, "https://evil.example", HOST)
    assert not TRUSTING.refuses("POST", site, "https://app.example.com", HOST)
    assert not TRUSTING.refuses("POST", site, "HTTPS://APP.example.com:443", HOST)


def test_without_fetch_site_the_origin_must_be_the_host():
    assert not PROTECT.refuses("POST", None, f"https://{HOST}", HOST)
    assert not PROTECT.refuses("POST", None, "http://127.0.0.1:5000", "127.0.0.1:5000")
    assert PROTECT.refuses("POST", None, "http://127.0.0.1:5001", "127.0.0.1:5000")
    assert PROTECT.refuses("POST", None, "https://evil.example", HOST)
    assert PROTECT.refuses("POST", None, "null", HOST)  # sandboxed frames, data: URLs
    assert not TRUSTING.refuses("POST", None, "https://app.example.com", HOST)


def test_no_header_at_all_is_not_a_browser_and_passes():
    assert not PROTECT.refuses("POST", None, None, HOST)
    assert not PROTECT.refuses("POST", "", "", HOST)


def test_protection_off_refuses_nothing():
    off = OriginSettings(protect=False)
    assert not off.refuses("POST", "cross-site", "https://evil.example", HOST)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("https://app.example.com", "https://app.example.com"),
        ("HTTPS://App.Example.COM:443", "https://app.example.com"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://[::1]:80", "http://[::1]"),
        ("https://app.example.com/", None),
        ("https://app.example.com/path", None),
        ("https://user@app.example.com", None),
        ("https://app.example.com:99999", None),
        ("null", None),
        ("app.example.com", None),
    ],
)
def test_normalize_origin(raw, normal):
    assert normalize_origin(raw) == normal


def test_logged_origins_are_bounded_and_never_raw():
    assert loggable_origin("https://Evil.example") == "https://evil.example"
    assert loggable_origin("https://evil.example\r\nX: forged") == "invalid"
    assert loggable_origin("https://" + "a" * 5000 + ".example") == "invalid"
    assert len(loggable_origin("https://" + "a" * 150 + ".example") or "") == 100
    assert loggable_origin(None) is None


def test_settings_are_validated_naming_the_key():
    settings = OriginSettings.from_config(
        {"SMSCODE_TRUSTED_ORIGINS": ["https://App.example.com:443", "http://localhost:3000"]}
    )
    assert settings.trusted == {"https://app.example.com", "http://localhost:3000"}
    assert settings.protect and not settings.credentials
    assert OriginSettings.from_config({}).trusted == frozenset()
    for bad in (["https://app.example.com/spa"], ["*"], ["https://*.example.com"], [3], 5):
        with pytest.raises(ConfigurationError, match="SMSCODE_TRUSTED_ORIGINS"):
            OriginSettings.from_config({"SMSCODE_TRUSTED_ORIGINS": bad})
    with pytest.raises(ConfigurationError, match="SMSCODE_CROSS_ORIGIN_PROTECTION"):
        OriginSettings.from_config({"SMSCODE_CROSS_ORIGIN_PROTECTION": "yes"})
    with pytest.raises(ConfigurationError, match="SMSCODE_CORS_CREDENTIALS"):
        OriginSettings.from_config({"SMSCODE_CORS_CREDENTIALS": 1})
