"""``flask smscode doctor`` end to end: the real CLI, the real SDK signing real requests to
the loopback Dysmsapi server (QuerySmsSign / QuerySmsTemplate, its Date header), and a
private Redis. A good configuration passes; each broken one fails on its own line.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from flask_smscode import sms_bp
from flask_smscode.cli import smscode
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.servers.dysmsapi_server import (
    STATUS_REJECTED,
    STATUS_REVIEWING,
    TYPE_CODE,
    TYPE_INTERNATIONAL,
    TYPE_NOTICE,
    DysmsapiServer,
)
from tests.servers.redis_cluster import RedisCluster

ENGLISH = {"LANGUAGE": "", "LC_ALL": "C.UTF-8"}
TEMPLATE = "SMS_123456789"
LABELS = ("endpoint", "clock", "credentials", "signature", f"template {TEMPLATE}", "store")


@pytest.fixture(scope="module")
def server() -> Iterator[DysmsapiServer]:
    with DysmsapiServer({ACCESS_KEY_ID: ACCESS_KEY_SECRET}) as srv:
        yield srv


@pytest.fixture
def sms(server: DysmsapiServer) -> Iterator[DysmsapiServer]:
    """The module's server, its account restored (all approved) and clock reset per test."""
    server.reset()
    yield server
    assert server.errors == []
    server.reset()


@pytest.fixture
def make_app(sms: DysmsapiServer, redis_url: str) -> Callable[..., Flask]:
    def factory(register: bool = False, **overrides: Any) -> Flask:
        app = Flask("doctor_app")
        app.config.update(
            SECRET_KEY="test-secret-key",
            TESTING=True,
            SMSCODE_STORAGE_URI=redis_url,
            SMSCODE_KEY_PREFIX="smscode-doctor",
            SMSCODE_SENDER="aliyun",
            SMSCODE_ALIYUN_ACCESS_KEY_ID=ACCESS_KEY_ID,
            SMSCODE_ALIYUN_ACCESS_KEY_SECRET=ACCESS_KEY_SECRET,
            SMSCODE_ALIYUN_SIGN_NAME="TestSign",
            SMSCODE_ALIYUN_TEMPLATE_CODE=TEMPLATE,
            SMSCODE_ALIYUN_ENDPOINT=sms.endpoint,
            SMSCODE_ALIYUN_PROTOCOL="http",
            SMSCODE_ALIYUN_TIMEOUT_SECONDS=2,
        )
        app.config.update(overrides)
        if register:
            app.register_blueprint(sms_bp)
        return app

    return factory


def doctor(app: Flask, *args: str) -> Result:
    result = app.test_cli_runner().invoke(smscode, [*args, "doctor"], env=ENGLISH)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert ACCESS_KEY_SECRET not in result.output  # never the secret, nor the full key id
    assert ACCESS_KEY_ID not in result.output
    return result


def line(output: str, label: str) -> str:
    """The one line of the check named ``label``."""
    found = [
        text
        for text in output.splitlines()
        if re.match(rf"^\S \w+\s+{re.escape(label)}(\s|$)", text)
    ]
    assert len(found) == 1, (label, output)
    return found[0]


def status(output: str, label: str) -> str:
    return line(output, label).split()[1]


def fails_alone(result: Result, label: str, *, skipped: tuple[str, ...] = ()) -> str:
    """Exit 1, ``label`` is the failing line; every other check passed (or was skipped)."""
    assert result.exit_code == 1, result.output
    for other in LABELS:
        if other in skipped:
            assert status(result.output, other) == "SKIP", result.output
        elif other != label:
            assert status(result.output, other) in ("OK", "WARN"), result.output
    failing = line(result.output, label)
    assert failing.startswith("✗ FAIL"), result.output
    assert "fix:" in failing
    assert result.output.rstrip().endswith("check(s) failed, 1 warning(s).")
    return failing


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- a good configuration --------------------------------------------------------------------
def test_good_configuration_passes(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    app = make_app(
        register=True,
        SMSCODE_ALIYUN_TEMPLATE_CODE={
            "login": "SMS_LOGIN",
            "signup": "SMS_SIGNUP",
            "reset_password": "SMS_LOGIN",
        },
    )
    result = doctor(app)
    assert result.exit_code == 0, result.output
    out = result.output
    assert status(out, "endpoint") == "WARN"  # the loopback server speaks plain http
    assert "reachable over plain http; production must use https" in line(out, "endpoint")
    for label in (
        "clock",
        "credentials",
        "signature",
        "template SMS_LOGIN (login, reset_password)",
        "template SMS_SIGNUP (signup)",
        "store",
    ):
        assert status(out, label) == "OK", out
    assert "AccessKey test**** accepted" in line(out, "credentials")
    assert "contains ${code}" in line(out, "template SMS_SIGNUP (signup)")
    assert out.rstrip().endswith("All checks passed (1 warning(s)).")
    # Every provider call was signed and accepted; one query per distinct template.
    actions = [r.action for r in sms.requests if r.signature_ok]
    assert sorted(actions) == ["QuerySmsSign", "QuerySmsTemplate", "QuerySmsTemplate"]
    assert sms.sent == []  # the doctor never sends an SMS


def test_json_output(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    result = make_app().test_cli_runner().invoke(smscode, ["doctor", "--json"], env=ENGLISH)
    data = json.loads(result.output)
    assert (result.exit_code, data["ok"], data["failures"], data["warnings"]) == (0, True, 0, 1)
    assert [c["check"] for c in data["checks"]] == [
        "endpoint",
        "clock",
        "credentials",
        "sign",
        "template",
        "store",
    ]
    assert data["checks"][4]["params"]["template"] == TEMPLATE
    assert all(c["detail"] for c in data["checks"])
    sms.remove_sign("TestSign")
    result = make_app().test_cli_runner().invoke(smscode, ["doctor", "--json"], env=ENGLISH)
    data = json.loads(result.output)
    assert (result.exit_code, data["ok"], data["failures"]) == (1, False, 1)
    assert data["checks"][3]["status"] == "fail"
    assert data["checks"][3]["fix_key"] == "cli.doctor.fix.sign_name"


# -- credentials -----------------------------------------------------------------------------
def test_wrong_secret(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    result = doctor(make_app(SMSCODE_ALIYUN_ACCESS_KEY_SECRET="not-the-secret"))
    failing = fails_alone(result, "credentials", skipped=("signature", f"template {TEMPLATE}"))
    assert "the secret does not match (SignatureDoesNotMatch)" in failing
    assert "SMSCODE_ALIYUN_ACCESS_KEY_SECRET" in failing
    assert "not-the-secret" not in result.output
    assert [r.code for r in sms.requests if r.action] == ["SignatureDoesNotMatch"]


def test_unknown_access_key_id(make_app: Callable[..., Flask]) -> None:
    result = doctor(make_app(SMSCODE_ALIYUN_ACCESS_KEY_ID="LTAI5tFakeKeyId0000"))
    failing = fails_alone(result, "credentials", skipped=("signature", f"template {TEMPLATE}"))
    assert "AccessKey LTAI**** is unknown or disabled (InvalidAccessKeyId.NotFound)" in failing
    assert "LTAI5tFakeKeyId0000" not in result.output


# -- the signature ---------------------------------------------------------------------------
def test_missing_sign(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    sms.remove_sign("TestSign")
    failing = fails_alone(doctor(make_app()), "signature")
    assert '"TestSign" does not exist in this account (isv.SMS_SIGNATURE_ILLEGAL)' in failing
    assert "SMSCODE_ALIYUN_SIGN_NAME" in failing


def test_sign_under_review(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    sms.set_sign("TestSign", status=STATUS_REVIEWING)
    failing = fails_alone(doctor(make_app()), "signature")
    assert '"TestSign" is under review (SignStatus 0)' in failing
    assert "wait for the review" in failing


def test_rejected_sign_shows_the_reason(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    sms.set_sign("TestSign", status=STATUS_REJECTED, reason="文件不能证明信息真实性")
    failing = fails_alone(doctor(make_app()), "signature")
    assert "was rejected (SignStatus 2): 文件不能证明信息真实性" in failing


# -- templates -------------------------------------------------------------------------------
def test_rejected_template(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    sms.set_template(TEMPLATE, status=STATUS_REJECTED, reason="模板内容不规范")
    failing = fails_alone(doctor(make_app()), f"template {TEMPLATE}")
    assert f"{TEMPLATE} is not approved (TemplateStatus 2): 模板内容不规范" in failing


def test_template_under_review(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    sms.set_template(TEMPLATE, status=STATUS_REVIEWING)
    failing = fails_alone(doctor(make_app()), f"template {TEMPLATE}")
    assert "is under review (TemplateStatus 0)" in failing


def test_missing_template(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    sms.remove_template(TEMPLATE)
    failing = fails_alone(doctor(make_app()), f"template {TEMPLATE}")
    assert "does not exist in this account (isv.SMS_TEMPLATE_ILLEGAL)" in failing


def test_notification_template(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    sms.set_template(TEMPLATE, "尊敬的用户，您的验证码为${code}。", template_type=TYPE_NOTICE)
    failing = fails_alone(doctor(make_app()), f"template {TEMPLATE}")
    assert "is not a verification-code template (TemplateType 1)" in failing


def test_template_without_the_code_variable(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    sms.set_template(TEMPLATE, "您的验证码为：${number}，5分钟内有效")
    failing = fails_alone(doctor(make_app()), f"template {TEMPLATE}")
    assert "does not contain ${code} (variables: ${number})" in failing
    # The configured variable name is what counts.
    result = doctor(make_app(SMSCODE_ALIYUN_TEMPLATE_PARAM="number"))
    assert result.exit_code == 0, result.output
    assert "contains ${number}" in line(result.output, f"template {TEMPLATE}")


def test_template_with_another_variable(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    sms.set_template(TEMPLATE, "${name}，您的验证码为：${code}")
    failing = fails_alone(doctor(make_app()), f"template {TEMPLATE}")
    assert "needs ${name} besides ${code}" in failing


# -- clock, endpoint, store ------------------------------------------------------------------
def test_clock_skewed_by_twenty_minutes(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    sms.clock_offset = 20 * 60  # the provider's clock is 20 minutes ahead of ours
    result = doctor(make_app())
    assert result.exit_code == 1, result.output
    clock = line(result.output, "clock")
    assert clock.startswith("✗ FAIL")
    seconds = int(re.search(r"local clock (\d+) s behind", clock).group(1))  # type: ignore[union-attr]
    assert 1195 <= seconds <= 1205
    # Alibaba refuses the signed calls too: the credentials line says why and points at the clock.
    credentials = line(result.output, "credentials")
    assert "timestamp was refused (InvalidTimeStamp.Expired); see clock" in credentials
    assert status(result.output, "store") == "OK"


def test_clock_a_few_minutes_off_warns(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    sms.clock_offset = -5 * 60
    result = doctor(make_app())
    assert result.exit_code == 0, result.output
    assert status(result.output, "clock") == "WARN"
    assert re.search(r"local clock 30\d s ahead", line(result.output, "clock"))
    assert status(result.output, "credentials") == "OK"


def test_https_to_a_plain_http_server_fails(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    result = doctor(make_app(SMSCODE_ALIYUN_PROTOCOL="https"))
    assert result.exit_code == 1, result.output
    endpoint = line(result.output, "endpoint")
    assert endpoint.startswith("✗ FAIL") and f"{sms.endpoint} not reachable" in endpoint
    assert status(result.output, "credentials") == "FAIL"


def test_store_down(make_app: Callable[..., Flask]) -> None:
    uri = f"redis://:hunter2@127.0.0.1:{closed_port()}/0"
    result = doctor(make_app(SMSCODE_STORAGE_URI=uri))
    failing = fails_alone(result, "store")
    assert f"redis://{uri.split('@')[1]} not reachable" in failing
    assert "hunter2" not in result.output


def test_store_down_with_the_service_registered(make_app: Callable[..., Flask]) -> None:
    app = make_app(register=True, SMSCODE_STORAGE_URI=f"redis://127.0.0.1:{closed_port()}")
    fails_alone(doctor(app), "store")


@pytest.mark.redis_cluster
def test_cluster_node_behind_plain_redis_uri(
    make_app: Callable[..., Flask], redis_cluster: RedisCluster
) -> None:
    uri = f"redis://127.0.0.1:{redis_cluster.seed_ports[0]}"
    failing = fails_alone(doctor(make_app(SMSCODE_STORAGE_URI=uri)), "store")
    assert "reaches a Redis Cluster node; use redis+cluster://" in failing
    result = doctor(make_app(SMSCODE_STORAGE_URI=redis_cluster.uri))
    assert result.exit_code == 0, result.output
    assert "(cluster)" in line(result.output, "store")


def test_console_sender_checks_only_the_store(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    result = doctor(make_app(SMSCODE_SENDER="console", SMSCODE_STORAGE_URI="memory://"))
    assert result.exit_code == 0, result.output
    assert status(result.output, "provider") == "SKIP"
    assert status(result.output, "store") == "WARN"
    assert sms.requests == []


def test_chinese_output(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    sms.set_sign("TestSign", status=STATUS_REVIEWING)
    result = make_app().test_cli_runner().invoke(smscode, ["--lang", "zh", "doctor"])
    assert result.exit_code == 1, result.output
    assert "✗ 失败  签名" in result.output
    assert "“TestSign”正在审核中（SignStatus 0）" in result.output
    assert "1 项检查失败，1 个警告。" in result.output


# -- failover: every Alibaba Cloud sender, with its own settings ------------------------------
BACKUP_KEY_ID, BACKUP_SECRET = "LTAIbackup0000", "backup-secret-value"
SENDER_LABELS = ("endpoint", "clock", "credentials", "signature", f"template {TEMPLATE}")


@pytest.fixture(scope="module")
def backup_server() -> Iterator[DysmsapiServer]:
    """A second account on a second loopback server: what a failover backup really is."""
    with DysmsapiServer({BACKUP_KEY_ID: BACKUP_SECRET}, sign_names=["BackupSign"]) as srv:
        yield srv


@pytest.fixture
def backup(backup_server: DysmsapiServer) -> Iterator[DysmsapiServer]:
    backup_server.reset()
    yield backup_server
    assert backup_server.errors == []
    backup_server.reset()


def failover_config(backup: DysmsapiServer) -> dict[str, Any]:
    return {
        "SMSCODE_SENDER": "aliyun,backup",
        "SMSCODE_SENDERS_CONFIG": {
            "backup": {
                "SMSCODE_ALIYUN_ACCESS_KEY_ID": BACKUP_KEY_ID,
                "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": BACKUP_SECRET,
                "SMSCODE_ALIYUN_SIGN_NAME": "BackupSign",
                "SMSCODE_ALIYUN_ENDPOINT": backup.endpoint,
            }
        },
    }


def test_every_sender_is_checked_with_its_own_settings(
    make_app: Callable[..., Flask], sms: DysmsapiServer, backup: DysmsapiServer
) -> None:
    backup.set_sign("BackupSign", status=STATUS_REVIEWING)
    result = doctor(make_app(**failover_config(backup)))
    assert result.exit_code == 1, result.output
    out = result.output
    for sender in ("aliyun", "backup"):
        for label in SENDER_LABELS:
            if (sender, label) != ("backup", "signature"):
                assert status(out, f"{sender}: {label}") in ("OK", "WARN"), out
    failing = line(out, "backup: signature")
    assert failing.startswith("✗ FAIL")
    assert '"BackupSign" is under review (SignStatus 0)' in failing
    assert "AccessKey LTAI**** accepted" in line(out, "backup: credentials")
    assert f"{backup.endpoint} reachable" in line(out, "backup: endpoint")
    assert status(out, "store") == "OK"
    assert out.rstrip().endswith("1 check(s) failed, 2 warning(s).")
    # Each account was asked about its own signature, with its own (accepted) key.
    assert [(r.action, r.signature_ok) for r in sms.requests if r.action] == [
        ("QuerySmsSign", True),
        ("QuerySmsTemplate", True),
    ]
    assert [(r.action, r.signature_ok) for r in backup.requests if r.action] == [
        ("QuerySmsSign", True),
        ("QuerySmsTemplate", True),
    ]
    assert BACKUP_SECRET not in out and BACKUP_KEY_ID not in out
    data = json.loads(
        make_app(**failover_config(backup))
        .test_cli_runner()
        .invoke(smscode, ["doctor", "--json"], env=ENGLISH)
        .output
    )
    failed = [(c["sender"], c["check"]) for c in data["checks"] if c["status"] == "fail"]
    assert failed == [("backup", "sign")]


def test_console_in_the_list_is_skipped(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    result = doctor(make_app(SMSCODE_SENDER=["console", "aliyun"]))
    assert result.exit_code == 0, result.output
    skipped = line(result.output, "console: provider")
    assert skipped.startswith("- SKIP") and "no SMS provider to check" in skipped
    for label in ("clock", "credentials", "signature", f"template {TEMPLATE}"):
        assert status(result.output, f"aliyun: {label}") == "OK", result.output
    assert [r.action for r in sms.requests if r.action] == ["QuerySmsSign", "QuerySmsTemplate"]


class OwnSender:
    """A user's own sender class (``SMSCODE_SENDER = "...,tests.cli.test_doctor.OwnSender"``)."""

    def __init__(self, config: Any) -> None:
        self.config = config

    def send(self, phone: str, code: str, purpose: str, **kwargs: Any) -> None:
        """Sends nothing: the doctor never sends, and cannot check this sender."""


def test_custom_sender_is_skipped_with_its_path(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    result = doctor(make_app(SMSCODE_SENDER="aliyun,tests.cli.test_doctor.OwnSender"))
    assert result.exit_code == 0, result.output
    skipped = line(result.output, "tests.cli.test_doctor.OwnSender: provider")
    assert "tests.cli.test_doctor.OwnSender is not an Alibaba Cloud sender" in skipped
    assert status(result.output, "aliyun: signature") == "OK"


# -- international templates -----------------------------------------------------------------
INTL = "SMS_INTL_CODE"


def test_good_international_template(make_app: Callable[..., Flask], sms: DysmsapiServer) -> None:
    result = doctor(
        make_app(SMSCODE_ALLOWED_REGIONS=["CN", "HK", "SG"], SMSCODE_ALIYUN_INTL_TEMPLATE_CODE=INTL)
    )
    assert result.exit_code == 0, result.output
    ok = line(result.output, f"intl template {INTL}")
    assert ok.startswith("✓ OK")
    assert "international type (TemplateType 3), contains ${code}" in ok
    assert sorted(r.action for r in sms.requests if r.action) == [
        "QuerySmsSign",
        "QuerySmsTemplate",
        "QuerySmsTemplate",
    ]


def test_domestic_template_as_international_fails(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    sms.set_template(INTL, "您的验证码为：${code}，5分钟内有效", template_type=TYPE_CODE)
    result = doctor(
        make_app(
            SMSCODE_ALLOWED_REGIONS="*",
            SMSCODE_ALIYUN_INTL_TEMPLATE_CODE={
                "login": INTL,
                "signup": INTL,
                "reset_password": INTL,
            },
        )
    )
    assert result.exit_code == 1, result.output
    label = f"intl template {INTL} (login, signup, reset_password)"
    failing = line(result.output, label)
    assert failing.startswith("✗ FAIL")
    assert "is not an international template (TemplateType 0, expected 3)" in failing
    assert "fix: apply for an international template" in failing
    assert status(result.output, f"template {TEMPLATE}") == "OK"
    assert result.output.rstrip().endswith("1 check(s) failed, 1 warning(s).")


def test_international_template_without_the_code_variable(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    sms.set_template(INTL, "Your code is ${number}.", template_type=TYPE_INTERNATIONAL)
    result = doctor(
        make_app(SMSCODE_ALLOWED_REGIONS=["CN", "HK"], SMSCODE_ALIYUN_INTL_TEMPLATE_CODE=INTL)
    )
    assert "does not contain ${code} (variables: ${number})" in line(
        result.output, f"intl template {INTL}"
    )
    assert result.exit_code == 1


def test_international_regions_without_a_template(
    make_app: Callable[..., Flask], sms: DysmsapiServer
) -> None:
    result = doctor(make_app(SMSCODE_ALLOWED_REGIONS=["CN", "HK"]))
    assert result.exit_code == 1, result.output
    failing = line(result.output, "intl template")
    assert "(CN, HK) admits numbers outside the mainland" in failing
    assert "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE" in failing


def test_backup_international_template_is_its_own(
    make_app: Callable[..., Flask], sms: DysmsapiServer, backup: DysmsapiServer
) -> None:
    backup.set_template("SMS_BACKUP_INTL", "您的验证码为：${code}", template_type=TYPE_CODE)
    config = failover_config(backup)
    config["SMSCODE_SENDERS_CONFIG"]["backup"]["SMSCODE_ALIYUN_INTL_TEMPLATE_CODE"] = (
        "SMS_BACKUP_INTL"
    )
    result = doctor(
        make_app(
            SMSCODE_ALLOWED_REGIONS=["CN", "HK"], SMSCODE_ALIYUN_INTL_TEMPLATE_CODE=INTL, **config
        )
    )
    assert result.exit_code == 1, result.output
    assert status(result.output, f"aliyun: intl template {INTL}") == "OK"
    assert "(TemplateType 0, expected 3)" in line(
        result.output, "backup: intl template SMS_BACKUP_INTL"
    )
