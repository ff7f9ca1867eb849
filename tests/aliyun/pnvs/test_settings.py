"""The SMSCODE_PNVS_* settings are validated when the app starts, each error naming its key."""

from __future__ import annotations

import pytest
from flask import Flask

from flask_smscode import ConfigurationError, get_service, sms_bp
from flask_smscode.aliyun.pnvs.sender import PnvsSender
from flask_smscode.aliyun.pnvs.settings import PnvsSettings
from flask_smscode.config import SETTINGS

KEYS = (
    "SMSCODE_PNVS_SIGN_NAME",
    "SMSCODE_PNVS_TEMPLATE_CODE",
    "SMSCODE_PNVS_SCHEME_NAME",
    "SMSCODE_PNVS_ENDPOINT",
    "SMSCODE_PNVS_PROTOCOL",
    "SMSCODE_PNVS_TIMEOUT_SECONDS",
)


def test_every_key_is_a_row_of_the_settings_table() -> None:
    for key in KEYS:
        assert key in SETTINGS, key
    assert SETTINGS["SMSCODE_PNVS_ENDPOINT"].default == "dypnsapi.aliyuncs.com"
    assert SETTINGS["SMSCODE_PNVS_PROTOCOL"].default == "https"


def test_defaults_and_shared_credentials(monkeypatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "env-key-id")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-key-secret")
    settings = PnvsSettings.from_config({})
    assert settings.endpoint == "dypnsapi.aliyuncs.com" and settings.protocol == "https"
    assert settings.timeout == 5.0 and settings.transport.access_key_id == "env-key-id"
    assert settings.valid_minutes == 5 and settings.resend_interval_seconds == 60
    assert "env-key-secret" not in repr(settings)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"SMSCODE_PNVS_PROTOCOL": "ftp"}, "SMSCODE_PNVS_PROTOCOL"),
        (
            {"SMSCODE_PNVS_PROTOCOL": "http", "SMSCODE_PNVS_ENDPOINT": "dypnsapi.aliyuncs.com"},
            "SMSCODE_PNVS_PROTOCOL",
        ),
        ({"SMSCODE_PNVS_ENDPOINT": ""}, "SMSCODE_PNVS_ENDPOINT"),
        ({"SMSCODE_PNVS_TIMEOUT_SECONDS": 0}, "SMSCODE_PNVS_TIMEOUT_SECONDS"),
        ({"SMSCODE_PNVS_TIMEOUT_SECONDS": 61}, "SMSCODE_PNVS_TIMEOUT_SECONDS"),
        ({"SMSCODE_PNVS_TIMEOUT_SECONDS": True}, "SMSCODE_PNVS_TIMEOUT_SECONDS"),
        ({"SMSCODE_PNVS_SIGN_NAME": 42}, "SMSCODE_PNVS_SIGN_NAME"),
        ({"SMSCODE_PNVS_SIGN_NAME": ""}, "SMSCODE_PNVS_SIGN_NAME"),
        ({"SMSCODE_PNVS_TEMPLATE_CODE": 100001}, "SMSCODE_PNVS_TEMPLATE_CODE"),
        ({"SMSCODE_PNVS_TEMPLATE_CODE": ""}, "SMSCODE_PNVS_TEMPLATE_CODE"),
        ({"SMSCODE_PNVS_TEMPLATE_CODE": {"login": "100001"}}, "SMSCODE_PNVS_TEMPLATE_CODE"),
        ({"SMSCODE_PNVS_SCHEME_NAME": "x" * 21}, "SMSCODE_PNVS_SCHEME_NAME"),
        ({"SMSCODE_ALLOWED_REGIONS": ["CN", "HK"]}, "SMSCODE_ALLOWED_REGIONS"),
        ({"SMSCODE_ALLOWED_REGIONS": ["*"]}, "SMSCODE_ALLOWED_REGIONS"),
        ({"SMSCODE_ALIYUN_ACCESS_KEY_ID": None}, "SMSCODE_ALIYUN_ACCESS_KEY_ID"),
        ({"SMSCODE_ALIYUN_ACCESS_KEY_SECRET": None}, "SMSCODE_ALIYUN_ACCESS_KEY_SECRET"),
    ],
)
def test_start_up_refuses_naming_the_key(pnvs_config, monkeypatch, override, key) -> None:
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", raising=False)
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", **pnvs_config)
    app.config.update(override)
    with pytest.raises(ConfigurationError, match=key):
        app.register_blueprint(sms_bp)


def test_a_purpose_dict_covering_every_purpose_is_accepted(pnvs_config) -> None:
    templates = {"login": "100001", "signup": "100002", "reset_password": "100003"}
    sender = PnvsSender(
        {**pnvs_config, "SMSCODE_PNVS_TEMPLATE_CODE": templates}, purposes=tuple(templates)
    )
    assert sender.templates == templates and sender.default_template is None


def test_minutes_round_up(pnvs_config) -> None:
    settings = PnvsSettings.from_config({**pnvs_config, "SMSCODE_CODE_TTL_SECONDS": 90})
    assert settings.valid_minutes == 2 and settings.code_ttl_seconds == 90


def test_a_route_of_its_own_lets_pnvs_serve_an_app_with_other_regions(pnvs_config) -> None:
    """PNVS is mainland-only: on a route keyed "86" it may serve an app that also allows
    Hong Kong, whose numbers take the "*" route."""
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", **pnvs_config)
    app.config.update(
        SMSCODE_ALLOWED_REGIONS=["CN", "HK"],
        SMSCODE_SENDER=None,
        SMSCODE_SENDER_ROUTES={"86": ["pnvs"], "*": ["console"]},
    )
    app.register_blueprint(sms_bp)
    with app.app_context():
        sender = get_service().sender
        assert [name for name, _ in sender.route_for("+8613800138000")] == ["pnvs"]
        assert [name for name, _ in sender.route_for("+85251234567")] == ["console"]


@pytest.mark.parametrize(
    "override",
    [
        {"SMSCODE_ALLOWED_REGIONS": ["CN", "HK"]},
        {"SMSCODE_ALLOWED_REGIONS": ["CN", "HK"], "SMSCODE_SENDER_ROUTES": {"*": ["pnvs"]}},
        {
            "SMSCODE_ALLOWED_REGIONS": ["*"],
            "SMSCODE_SENDER_ROUTES": {"86": ["console"], "*": ["pnvs"]},
        },
    ],
)
def test_a_route_that_reaches_other_numbers_is_refused(pnvs_config, override) -> None:
    app = Flask(__name__)
    app.config.update(SECRET_KEY="k", **pnvs_config)
    app.config.update(override)
    with pytest.raises(ConfigurationError, match=r"'pnvs' sends only to \+86 numbers"):
        app.register_blueprint(sms_bp)
