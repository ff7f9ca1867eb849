"""Failover between two Alibaba Cloud accounts: two loopback Dysmsapi servers, the first
failing in each way, the real SDK talking to both (each checks its own account's signature).

A send moves on only after a definite failure of the provider itself; an ambiguous outcome,
a refusal about the number and flow control end it where it is. One SMS at most, always.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from flask_smscode import ConfigurationError, get_service
from flask_smscode.cli import smscode
from flask_smscode.metrics import SENDERS
from tests.helpers import ENGLISH, PHONE, assert_error, send, verify
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.redis_server import free_port

BACKUP_KEY_ID, BACKUP_SECRET = "backup-key-id", "backup-key-secret"


@pytest.fixture(scope="module")
def _backup_server() -> Iterator[DysmsapiServer]:
    """The second account: its own AccessKey, signature and template."""
    server = DysmsapiServer(
        {BACKUP_KEY_ID: BACKUP_SECRET},
        sign_names={"BackupSign"},
        templates={"SMS_BACKUP": ["code"]},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backup(_backup_server: DysmsapiServer) -> Iterator[DysmsapiServer]:
    _backup_server.reset()
    yield _backup_server
    _backup_server.reset()


def backup_entry(server: DysmsapiServer, **overrides: Any) -> dict[str, Any]:
    return {
        "SMSCODE_SENDER": "aliyun",
        "SMSCODE_ALIYUN_ACCESS_KEY_ID": BACKUP_KEY_ID,
        "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": BACKUP_SECRET,
        "SMSCODE_ALIYUN_SIGN_NAME": "BackupSign",
        "SMSCODE_ALIYUN_TEMPLATE_CODE": "SMS_BACKUP",
        "SMSCODE_ALIYUN_ENDPOINT": server.endpoint,
        **overrides,
    }


@pytest.fixture
def make_failover(make_app, backup):
    def factory(**config: Any):
        config.setdefault("SMSCODE_SENDER", ["aliyun", "backup"])
        config.setdefault("SMSCODE_SENDERS_CONFIG", {"backup": backup_entry(backup)})
        return make_app(**config)

    return factory


def sendsms(server: DysmsapiServer) -> list:
    return [r for r in server.requests if r.action == "SendSms"]


def status(app):
    with app.app_context():
        return get_service().status(PHONE)


def assert_carried_by_backup(app, primary, backup, response) -> None:
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["delivery"] == "sent"
    assert primary.sent == [] and len(backup.sent) == 1  # exactly one SMS in all
    sms = backup.last_sms(PHONE)
    assert sms.sign_name == "BackupSign" and sms.template_code == "SMS_BACKUP"
    assert status(app).sender == "backup"
    client = app.test_client()
    assert verify(client, backup.last_code(PHONE)).status_code == 200


# -- outcomes that move on ------------------------------------------------------------------


@pytest.mark.parametrize("body", [None, "<html>Bad Gateway</html>"])
def test_http_5xx_moves_to_the_backup(make_failover, sms_server, backup, body):
    app = make_failover()
    sms_server.http_error_next(500 if body is None else 502, body)
    assert_carried_by_backup(app, sms_server, backup, send(app.test_client()))
    assert len(sendsms(sms_server)) == 1 and len(sendsms(backup)) == 1


def test_connection_refused_moves_to_the_backup(make_failover, backup):
    app = make_failover(SMSCODE_ALIYUN_ENDPOINT=f"127.0.0.1:{free_port()}")  # nothing listens
    response = send(app.test_client())
    assert response.status_code == 200 and len(backup.sent) == 1
    assert status(app).sender == "backup"


@pytest.mark.parametrize(
    "provider_code",
    [
        "isp.SYSTEM_ERROR",
        "isv.OUT_OF_SERVICE",
        "isv.AMOUNT_NOT_ENOUGH",
        "isv.ACCOUNT_ABNORMAL",
        "isv.DAY_LIMIT_CONTROL",
        "isp.RAM_PERMISSION_DENY",
        "isv.SMS_TEMPLATE_ILLEGAL",  # the backup account has its own approved template
    ],
)
def test_provider_side_codes_move_to_the_backup(
    make_failover, sms_server, backup, provider_code, caplog
):
    app = make_failover()
    sms_server.fail_next(provider_code)
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        response = send(app.test_client())
    lines = [r.getMessage() for r in caplog.records if r.name == "flask_smscode"]
    [moved] = [line for line in lines if "event=send.failover" in line]
    assert "sender=aliyun" in moved and f"provider_code={provider_code}" in moved
    assert "next=backup" in moved and moved.count("13800138000") == 0  # masked
    assert_carried_by_backup(app, sms_server, backup, response)


def test_wrong_primary_secret_moves_to_the_backup(make_failover, sms_server, backup):
    app = make_failover(SMSCODE_ALIYUN_ACCESS_KEY_SECRET="a-revoked-secret")
    assert_carried_by_backup(app, sms_server, backup, send(app.test_client()))
    assert sendsms(sms_server)[0].signature_ok is False


# -- outcomes that stay ---------------------------------------------------------------------


def test_read_timeout_is_unconfirmed_and_never_moves(make_failover, sms_server, backup):
    app = make_failover(SMSCODE_ALIYUN_TIMEOUT_SECONDS=0.5)
    sms_server.stall_next(2.0)  # the primary sends, then answers too late
    response = send(app.test_client())
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"
    assert sendsms(backup) == []  # no second SMS
    assert status(app).sender == "aliyun"
    assert verify(app.test_client(), sms_server.last_code(PHONE)).status_code == 200


def test_dropped_connection_never_moves(make_failover, sms_server, backup):
    app = make_failover()
    sms_server.drop_next()
    response = send(app.test_client())
    assert response.get_json()["delivery"] == "unconfirmed"
    assert sendsms(backup) == []
    assert_error(send(app.test_client()), 429, "throttled")  # the cooldown is kept


def test_illegal_number_is_invalid_phone_and_never_moves(make_failover, sms_server, backup):
    app = make_failover()
    sms_server.fail_next("isv.MOBILE_NUMBER_ILLEGAL")
    assert_error(send(app.test_client()), 400, "invalid_phone")
    assert sendsms(backup) == []
    assert status(app).code_ttl == 0


def test_flow_control_is_429_and_never_moves(make_failover, sms_server, backup):
    app = make_failover()
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL", "触发分钟级流控Permits:1")
    assert_error(send(app.test_client()), 429, "throttled")
    assert sendsms(backup) == []  # a second signature must not get around Alibaba's limit


def test_a_malformed_request_of_ours_never_moves(make_failover, sms_server, backup):
    app = make_failover()
    sms_server.fail_next("isv.INVALID_PARAMETERS")
    assert_error(send(app.test_client()), 502, "provider_error")
    assert sendsms(backup) == []


# -- everyone failing, and the first sender working -----------------------------------------


def test_both_failing_is_502_and_gives_the_reservation_back_once(
    make_failover, sms_server, backup, caplog
):
    app = make_failover(SMSCODE_RESEND_INTERVAL_SECONDS=0, SMSCODE_PHONE_LIMITS="5/hour")
    client = app.test_client()
    assert send(client).status_code == 200  # one real send, counted
    assert status(app).sends == {"5 per 1 hour": 1}
    sms_server.fail_next("isp.SYSTEM_ERROR")
    backup.http_error_next(503)
    SENDERS.reset()
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        body = assert_error(send(client), 502, "provider_error")
    assert "SYSTEM_ERROR" not in str(body) and "backup" not in str(body)
    after = status(app)
    assert after.sends == {"5 per 1 hour": 1}  # this send given back, exactly once
    assert after.code_ttl == 0 and after.cooldown == 0
    [line] = [r for r in caplog.records if "event=send " in r.getMessage() + " "]
    assert line.levelno == logging.WARNING and "sender=backup" in line.getMessage()
    assert SENDERS.snapshot() == {("aliyun", "failover"): 1, ("backup", "failed"): 1}
    assert len(sms_server.sent) == 1 and backup.sent == []


def test_the_first_sender_carries_when_it_works(make_failover, sms_server, backup, caplog):
    app = make_failover()
    SENDERS.reset()
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        assert send(app.test_client()).status_code == 200
    assert len(sms_server.sent) == 1 and sendsms(backup) == []
    [line] = [r.getMessage() for r in caplog.records if "event=send " in r.getMessage() + " "]
    assert "sender=aliyun" in line
    assert SENDERS.snapshot() == {("aliyun", "sent"): 1}
    assert status(app).sender == "aliyun"


def test_status_log_metric_and_cli_name_the_carrier(make_failover, sms_server, backup, caplog):
    app = make_failover()
    SENDERS.reset()
    sms_server.fail_next("isv.AMOUNT_NOT_ENOUGH")
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        assert send(app.test_client()).status_code == 200
    [line] = [r.getMessage() for r in caplog.records if "event=send " in r.getMessage() + " "]
    assert "sender=backup" in line and "outcome=sent" in line
    assert SENDERS.snapshot() == {("aliyun", "failover"): 1, ("backup", "sent"): 1}
    runner = app.test_cli_runner()
    result = runner.invoke(smscode, ["status", PHONE], env=ENGLISH)
    assert result.exit_code == 0, result.output
    assert "Sent by: backup" in result.output
    as_json = runner.invoke(smscode, ["status", PHONE, "--json"])
    assert '"sender": "backup"' in as_json.output
    # A newer send by the first sender replaces the record with its own.
    with app.app_context():
        get_service().reset(PHONE)
    assert send(app.test_client()).status_code == 200
    assert status(app).sender == "aliyun"


def test_prometheus_family_names_the_senders(make_failover, sms_server, backup):
    prometheus_client = pytest.importorskip("prometheus_client")
    from flask_smscode.metrics import SmsCodeCollector

    app = make_failover()
    SENDERS.reset()
    sms_server.fail_next("isp.SYSTEM_ERROR")
    assert send(app.test_client()).status_code == 200
    registry = prometheus_client.CollectorRegistry()
    registry.register(SmsCodeCollector())
    value = registry.get_sample_value(
        "smscode_sender_attempts_total", {"sender": "backup", "outcome": "sent"}
    )
    assert value == 1.0


# -- configuration --------------------------------------------------------------------------


def test_a_comma_separated_string_works_like_a_list(make_failover, sms_server, backup):
    app = make_failover(SMSCODE_SENDER="aliyun, backup")
    sms_server.fail_next("isp.SYSTEM_ERROR")
    assert send(app.test_client()).status_code == 200 and len(backup.sent) == 1


def test_the_single_sender_config_is_unchanged(make_app, sms_server):
    app = make_app()
    with app.app_context():
        service = get_service()
        assert type(service.sender).__name__ == "AliyunSender"
        assert service.sender_names == ("aliyun",)
    sms_server.fail_next("isp.SYSTEM_ERROR")
    assert_error(send(app.test_client()), 502, "provider_error")


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ({"SMSCODE_SENDER": ["aliyun", "bakup"]}, "'bakup'"),
        ({"SMSCODE_SENDER": ["aliyun", "aliyun"]}, "more than once"),
        ({"SMSCODE_SENDER": "aliyun,,backup"}, "SMSCODE_SENDER"),
        ({"SMSCODE_SENDER": []}, "SMSCODE_SENDER"),
        (
            {"SMSCODE_SENDERS_CONFIG": {"backup": {"SMSCODE_ALIYUN_ACESS_KEY_ID": "x"}}},
            "SMSCODE_SENDERS_CONFIG['backup']: 'SMSCODE_ALIYUN_ACESS_KEY_ID'",
        ),
        ({"SMSCODE_SENDERS_CONFIG": {"aliyun": {}}}, "SMSCODE_SENDERS_CONFIG['aliyun']"),
        (
            {"SMSCODE_SENDERS_CONFIG": {"backup": {"SMSCODE_SENDER": ["aliyun"]}}},
            "SMSCODE_SENDERS_CONFIG['backup']['SMSCODE_SENDER']",
        ),
        ({"SMSCODE_SENDERS_CONFIG": ["backup"]}, "SMSCODE_SENDERS_CONFIG"),
        (
            {"SMSCODE_SENDERS_CONFIG": {"backup": {"SMSCODE_ALIYUN_PROTOCOL": "ftp"}}},
            "SMSCODE_SENDERS_CONFIG['backup']: SMSCODE_ALIYUN_PROTOCOL",
        ),
    ],
)
def test_bad_configuration_fails_at_start_naming_the_key(make_app, backup, config, named):
    config.setdefault("SMSCODE_SENDER", ["aliyun", "backup"])
    entries = config.setdefault("SMSCODE_SENDERS_CONFIG", {"backup": backup_entry(backup)})
    if isinstance(entries, dict) and "backup" in entries and len(entries["backup"]) == 1:
        entries["backup"] = {**backup_entry(backup), **entries["backup"]}
    with pytest.raises(ConfigurationError) as info:
        make_app(**config)
    assert named in str(info.value)
    assert BACKUP_SECRET not in str(info.value)


def test_an_entry_inherits_what_it_does_not_override(make_app, sms_server, backup):
    # Same account, another endpoint: only the endpoint differs.
    app = make_app(
        SMSCODE_SENDER=["aliyun", "other_endpoint"],
        SMSCODE_SENDERS_CONFIG={"other_endpoint": {"SMSCODE_ALIYUN_ENDPOINT": backup.endpoint}},
    )
    backup.accounts["test-key-id"] = "test-key-secret"  # the same account, reached there
    backup.set_sign("TestSign")
    backup.set_template("SMS_123456789")
    sms_server.http_error_next(503)
    try:
        response = send(app.test_client())
    finally:
        del backup.accounts["test-key-id"]  # reset() restores signs and templates only
    assert response.status_code == 200, response.get_data(as_text=True)
    assert backup.last_sms(PHONE).sign_name == "TestSign"
    assert status(app).sender == "other_endpoint"
