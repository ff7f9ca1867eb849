"""SMSCODE_TENCENT_* validation at start-up: every refusal names the key to fix."""

from __future__ import annotations

import pytest

from flask_smscode import ConfigurationError
from flask_smscode.tencent.settings import TencentSettings


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"SMSCODE_TENCENT_SECRET_ID": None}, "SMSCODE_TENCENT_SECRET_ID"),
        ({"SMSCODE_TENCENT_SECRET_KEY": None}, "SMSCODE_TENCENT_SECRET_KEY"),
        ({"SMSCODE_TENCENT_SECRET_ID": " AKID "}, "SMSCODE_TENCENT_SECRET_ID"),
        ({"SMSCODE_TENCENT_SDK_APP_ID": "app-1"}, "SMSCODE_TENCENT_SDK_APP_ID"),
        ({"SMSCODE_TENCENT_SDK_APP_ID": None}, "SMSCODE_TENCENT_SDK_APP_ID"),
        ({"SMSCODE_TENCENT_SIGN_NAME": None}, "SMSCODE_TENCENT_SIGN_NAME"),
        ({"SMSCODE_TENCENT_TEMPLATE_ID": None}, "SMSCODE_TENCENT_TEMPLATE_ID"),
        ({"SMSCODE_TENCENT_TEMPLATE_ID": "SMS_1"}, "SMSCODE_TENCENT_TEMPLATE_ID"),
        ({"SMSCODE_TENCENT_TEMPLATE_ID": {"login": "1001"}}, "SMSCODE_TENCENT_TEMPLATE_ID"),
        ({"SMSCODE_TENCENT_INTL_TEMPLATE_ID": 3.5}, "SMSCODE_TENCENT_INTL_TEMPLATE_ID"),
        (
            {"SMSCODE_TENCENT_INTL_TEMPLATE_ID": None, "SMSCODE_ALLOWED_REGIONS": ["CN", "HK"]},
            "SMSCODE_TENCENT_INTL_TEMPLATE_ID",
        ),
        ({"SMSCODE_TENCENT_PROTOCOL": "ftp"}, "SMSCODE_TENCENT_PROTOCOL"),
        (
            {"SMSCODE_TENCENT_PROTOCOL": "http", "SMSCODE_TENCENT_ENDPOINT": "sms.example.com"},
            "SMSCODE_TENCENT_PROTOCOL",
        ),
        ({"SMSCODE_TENCENT_TIMEOUT_SECONDS": 0}, "SMSCODE_TENCENT_TIMEOUT_SECONDS"),
        ({"SMSCODE_TENCENT_TIMEOUT_SECONDS": 61}, "SMSCODE_TENCENT_TIMEOUT_SECONDS"),
        ({"SMSCODE_TENCENT_TEMPLATE_MINUTES": "yes"}, "SMSCODE_TENCENT_TEMPLATE_MINUTES"),
        ({"SMSCODE_TENCENT_REPORT_SECRET": "short"}, "SMSCODE_TENCENT_REPORT_SECRET"),
        (
            {"SMSCODE_TENCENT_REPORT_ALLOWED_IPS": ["not an address"]},
            "SMSCODE_TENCENT_REPORT_ALLOWED_IPS",
        ),
        ({"SMSCODE_TENCENT_REPORT_MAX_BYTES": 10}, "SMSCODE_TENCENT_REPORT_MAX_BYTES"),
    ],
)
def test_a_bad_setting_fails_at_start_up_naming_its_key(make_tencent_app, override, key):
    with pytest.raises(ConfigurationError) as caught:
        make_tencent_app(**override)
    assert key in str(caught.value)


def test_credentials_fall_back_to_tencents_environment_variables(monkeypatch, tencent_config):
    monkeypatch.setenv("TENCENTCLOUD_SECRET_ID", "AKIDfromenv")
    monkeypatch.setenv("TENCENTCLOUD_SECRET_KEY", "key-from-env")
    config = {
        k: v
        for k, v in tencent_config.items()
        if k not in ("SMSCODE_TENCENT_SECRET_ID", "SMSCODE_TENCENT_SECRET_KEY")
    }
    settings = TencentSettings.from_config(config)
    assert (settings.secret_id, settings.secret_key) == ("AKIDfromenv", "key-from-env")
    assert "AKIDfromenv" not in repr(settings) and "key-from-env" not in repr(settings)


def test_defaults(tencent_config):
    config = {
        k: v
        for k, v in tencent_config.items()
        if k not in ("SMSCODE_TENCENT_ENDPOINT", "SMSCODE_TENCENT_PROTOCOL")
    }
    settings = TencentSettings.from_config(config)
    assert settings.endpoint == "sms.tencentcloudapi.com" and settings.protocol == "https"
    assert settings.region == "ap-guangzhou" and settings.connect_timeout == 2.0
    assert settings.code_minutes == 5 and settings.template_minutes is False


def test_http_is_allowed_for_loopback_only(tencent_config):
    for endpoint in ("127.0.0.1:8080", "localhost:1", "[::1]:9"):
        config = {**tencent_config, "SMSCODE_TENCENT_ENDPOINT": endpoint}
        assert TencentSettings.from_config(config).protocol == "http"
