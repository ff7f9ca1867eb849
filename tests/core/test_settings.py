"""One reading of the settings: every section built once at init_app, each refusal naming
its key, nothing read from app.config afterwards."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from flask_smscode import ConfigurationError, get_service, sms_bp
from flask_smscode.core.settings import AppSettings, catalogue_from_config, idempotency_times

BASE = {"SECRET_KEY": "k" * 32, "TESTING": True, "SMSCODE_SENDER": "console"}


def make(**config: Any) -> Flask:
    app = Flask("settings")
    app.config.update(BASE, **config)
    app.register_blueprint(sms_bp)
    return app


def test_every_section_is_built_once_and_shared() -> None:
    app = make(SMSCODE_ALIYUN_REPORT_SECRET="s" * 32)
    with app.app_context():
        service = get_service()
        sections = service.sections
        assert isinstance(sections, AppSettings)
        assert service.settings is sections.core
        assert service.reports is sections.reports is service.deliveries.settings
        assert service.guard is sections.guard
        assert service.messages is sections.messages


def test_settings_changed_after_start_up_change_nothing() -> None:
    """The sections were read at registration; the app's config is not read again."""
    app = make(SMSCODE_OPENAPI_ENABLED=True)
    app.config["SMSCODE_OPENAPI_ENABLED"] = False
    app.config["SMSCODE_CODE_TTL_SECONDS"] = 1
    client = app.test_client()
    assert client.get("/sms/openapi.json").status_code == 200
    with app.app_context():
        assert get_service().settings.code_ttl == 300


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SMSCODE_OPENAPI_ENABLED", "yes"),
        ("SMSCODE_IDEMPOTENCY_WAIT_SECONDS", 61),
        ("SMSCODE_RATELIMIT_BACKEND", "nginx"),
        ("SMSCODE_DEFAULT_LANGUAGE", "tlh"),
        ("SMSCODE_ALIYUN_REPORT_SECRET", "short"),
        ("SMSCODE_GUARD_MIN_CONVERSION", 2),
    ],
)
def test_a_wrong_setting_fails_at_registration_naming_its_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=key):
        make(**{key: value})


def test_a_broken_locales_directory_is_a_configuration_error(tmp_path: Any) -> None:
    (tmp_path / "ja.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"ja\.json"):
        catalogue_from_config({"SMSCODE_LOCALES_DIR": str(tmp_path)})
    with pytest.raises(ConfigurationError, match="SMSCODE_LOCALES_DIR"):
        catalogue_from_config({"SMSCODE_LOCALES_DIR": str(tmp_path / "missing")})


def test_idempotency_times_follow_the_sender_and_the_store() -> None:
    assert idempotency_times(None, 5.0, 1.0) == (10.0, 12_000)
    assert idempotency_times(0.0, 5.0, 1.0) == (0.0, 12_000)  # 409 at once, claim still holds
    assert idempotency_times(30.0, 5.0, 0.5) == (30.0, 31_000)
