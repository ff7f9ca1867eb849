"""The sender registry: kinds found by name (entry points or register_sender), built
through ``create``, checked through ``check``; generic code names no vendor."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from flask import Flask

from flask_smscode import ConfigurationError, SendReceipt, get_service, send_code, sms_bp
from flask_smscode.aliyun.sender import AliyunSender
from flask_smscode.cli.doctor import run_checks
from flask_smscode.senders import ConsoleSender, register_sender
from flask_smscode.senders import registry as registry_module
from flask_smscode.senders.base import OK, Check, send_seconds
from flask_smscode.senders.chain import FailoverSender
from flask_smscode.senders.registry import sender_class, sender_kinds, sender_specs
from tests.helpers import E164, PHONE


class RecordingSender:
    """A third-party sender: built by the registry, checked by doctor, slow to answer."""

    built: list[tuple[tuple[str, ...], bool]] = []
    sent: list[tuple[str, str]] = []
    send_seconds = 7.5

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.region = config.get("SMSCODE_DEFAULT_REGION")

    @classmethod
    def create(
        cls, config: Mapping[str, Any], *, purposes: Sequence[str], show_code: bool
    ) -> RecordingSender:
        cls.built.append((tuple(purposes), show_code))
        return cls(config)

    @classmethod
    def check(cls, config: Mapping[str, Any]) -> list[Check]:
        return [Check("provider", OK, "cli.doctor.provider.console")]

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        self.sent.append((phone, purpose))
        return SendReceipt(provider_code="OK", request_id="r", out_id=out_id, sender="rec")


@pytest.fixture
def recording() -> Iterator[type[RecordingSender]]:
    RecordingSender.built.clear()
    RecordingSender.sent.clear()
    register_sender("recording", RecordingSender)
    try:
        yield RecordingSender
    finally:
        registry_module._registered.pop("recording", None)


def make(**config: Any) -> Flask:
    app = Flask("registry")
    app.config.update(SECRET_KEY="k" * 32, TESTING=True, **config)
    app.register_blueprint(sms_bp)
    return app


def test_the_built_in_kinds_come_from_entry_points() -> None:
    assert {"aliyun", "console"} <= set(sender_kinds())
    assert sender_class("console") is ConsoleSender
    assert sender_class("aliyun") is AliyunSender


def test_a_registered_kind_is_built_through_create_and_sends(
    recording: type[RecordingSender],
) -> None:
    app = make(SMSCODE_SENDER="recording", SMSCODE_PURPOSES=["login", "signup"])
    assert recording.built == [(("login", "signup"), True)]  # testing: show_code
    with app.app_context():
        assert get_service().sender_names == ("recording",)
        assert send_code(PHONE).delivery == "sent"
    assert recording.sent == [(E164, "login")]


def test_a_registered_kind_names_a_backup_in_a_failover_list(
    recording: type[RecordingSender],
) -> None:
    app = make(
        SMSCODE_SENDER=["console", "backup"],
        SMSCODE_SENDERS_CONFIG={"backup": {"SMSCODE_SENDER": "recording"}},
    )
    with app.app_context():
        service = get_service()
        assert isinstance(service.sender, FailoverSender)
        assert service.sender_names == ("console", "backup")


def test_send_seconds_sizes_the_idempotency_claim(recording: type[RecordingSender]) -> None:
    """A slow sender's duplicate waits twice its send, and the claim outlasts it."""
    app = make(SMSCODE_SENDER="recording", SMSCODE_STORAGE_TIMEOUT_SECONDS=0.5)
    with app.app_context():
        service = get_service()
        assert service.idempotency_wait == 15.0
        assert service._claim_ms == int((15.0 + 1.0) * 1000)
    assert send_seconds(object()) == 5.0  # a sender that says nothing: the default


def test_a_failover_list_waits_for_every_sender_in_turn(
    recording: type[RecordingSender],
) -> None:
    app = make(
        SMSCODE_SENDER=["recording", "again"],
        SMSCODE_SENDERS_CONFIG={"again": {"SMSCODE_SENDER": "recording"}},
    )
    with app.app_context():
        assert send_seconds(get_service().sender) == 15.0


def test_an_unknown_kind_is_refused_at_start_up_listing_the_registered_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        make(SMSCODE_SENDER="nosuchvendor")
    message = str(caught.value)
    assert "SMSCODE_SENDER" in message and "'aliyun'" in message and "'console'" in message


def test_a_named_entry_may_not_take_a_registered_kind_as_its_name(
    recording: type[RecordingSender],
) -> None:
    with pytest.raises(ConfigurationError, match="registered sender kind"):
        sender_specs({"SMSCODE_SENDER": "recording", "SMSCODE_SENDERS_CONFIG": {"recording": {}}})


def test_register_sender_refuses_a_name_that_cannot_be_a_label() -> None:
    with pytest.raises(ValueError, match="sender kind"):
        register_sender("my.dotted", RecordingSender)


def test_doctor_runs_the_sender_classes_own_check(recording: type[RecordingSender]) -> None:
    app = Flask("doctor")
    app.config.update(SECRET_KEY="k" * 32, SMSCODE_SENDER="recording")
    provider, store = run_checks(app)
    assert (provider.check, provider.status, provider.key) == (
        "provider",
        OK,
        "cli.doctor.provider.console",
    )
    assert store.check == "store"


def test_a_dotted_path_without_check_gets_a_skip_line() -> None:
    app = Flask("doctor")
    app.config.update(SECRET_KEY="k" * 32, SMSCODE_SENDER="tests.senders.test_registry.Plain")
    [provider, _store] = run_checks(app)
    assert (provider.status, provider.key) == ("skip", "cli.doctor.provider.custom")


class Plain:
    """A dotted-path sender: built as ``Plain(config)``, nothing else."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        return SendReceipt()


def test_a_dotted_path_is_built_with_the_config_alone() -> None:
    app = make(SMSCODE_SENDER="tests.senders.test_registry.Plain")
    with app.app_context():
        sender = get_service().sender
        assert isinstance(sender, Plain) and sender.config["SMSCODE_SENDER"].endswith("Plain")
