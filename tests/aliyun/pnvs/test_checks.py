"""``flask smscode doctor`` with a pnvs sender: the real CLI, the real SDK signing a real
CheckSmsVerifyCode to the loopback Dypnsapi server, in English and in Chinese."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask

from flask_smscode.aliyun.pnvs.sender import PnvsSender
from flask_smscode.cli import smscode
from tests.helpers import ENGLISH
from tests.servers.redis_server import free_port

CHINESE = {"LANGUAGE": "zh", "LC_ALL": "C.UTF-8"}


def doctor(config: dict[str, Any], env: dict[str, str] = ENGLISH) -> tuple[int, Any, str]:
    app = Flask("pnvs_doctor")
    app.config.update(SECRET_KEY="k", SMSCODE_STORAGE_URI="memory://", **config)
    result = app.test_cli_runner().invoke(smscode, ["doctor", "--json"], env=env)
    text = app.test_cli_runner().invoke(smscode, ["doctor"], env=env).output
    return result.exit_code, json.loads(result.output), text


def by_check(report: Any) -> dict[str, dict[str, Any]]:
    items = report["checks"] if isinstance(report, dict) else report
    return {item["check"]: item for item in items}


def test_a_good_configuration_passes(pnvs_config, pnvs_server):
    code, report, text = doctor(pnvs_config)
    checks = by_check(report)
    assert checks["endpoint"]["status"] == "warn"  # plain http on loopback
    assert checks["endpoint"]["fix_key"] == "cli.doctor.fix.pnvs_https"
    assert checks["clock"]["status"] == "ok"
    assert checks["credentials"]["status"] == "ok"
    assert checks["credentials"]["key"] == "cli.doctor.pnvs.credentials.ok"
    assert checks["sign"]["status"] == "ok" and "赠送签名配置" in checks["sign"]["detail"]
    assert checks["template"]["status"] == "ok" and "100001" in checks["template"]["detail"]
    assert code == 0, text
    assert "test-key-secret" not in text and "test-key-id" not in text  # masked: test****
    calls = [r for r in pnvs_server.requests if r.action == "CheckSmsVerifyCode"]
    assert len(calls) == 2  # one per doctor run (--json, then text)
    assert all(call.signature_ok and call.status == 200 for call in calls)
    assert not [r for r in pnvs_server.requests if r.action == "SendSmsVerifyCode"]


def test_chinese_output(pnvs_config, pnvs_server):
    _, report, _ = doctor(pnvs_config, CHINESE)
    checks = by_check(report)
    assert "号码认证服务接受了" in checks["credentials"]["detail"]
    assert "赠送模板配置" in checks["template"]["detail"]


def test_wrong_secret_fails_on_its_line(pnvs_config, pnvs_server):
    code, report, _ = doctor({**pnvs_config, "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": "nope"})
    checks = by_check(report)
    assert code == 1
    assert checks["credentials"]["key"] == "cli.doctor.credentials.wrong_secret"
    assert checks["credentials"]["fix_key"] == "cli.doctor.fix.secret"


def test_unknown_key(pnvs_config, pnvs_server):
    _, report, _ = doctor({**pnvs_config, "SMSCODE_ALIYUN_ACCESS_KEY_ID": "unknown-key-id"})
    assert by_check(report)["credentials"]["key"] == "cli.doctor.credentials.unknown_key"


@pytest.mark.parametrize(
    ("status", "code", "key", "expected"),
    [
        (200, "isv.PRODUCT_UNSUBSCRIBE", "cli.doctor.pnvs.not_subscribed", "fail"),
        (200, "isv.RAM_PERMISSION_DENY", "cli.doctor.no_permission", "warn"),
        (403, "Forbidden.RAM", "cli.doctor.no_permission", "warn"),
        (200, "isv.SOMETHING_NEW", "cli.doctor.credentials.refused", "fail"),
    ],
)
def test_account_refusals(pnvs_config, pnvs_server, status, code, key, expected):
    if status == 200:
        pnvs_server.http_error_next(200, {"Code": code, "Message": "x", "Success": False})
    else:
        pnvs_server.http_error_next(status, {"Code": code, "Message": "x", "RequestId": "R"})
    checks = by_check(_as_report(pnvs_config))
    assert checks["credentials"]["key"] == key and checks["credentials"]["status"] == expected


def _as_report(config: dict[str, Any]) -> list[dict[str, Any]]:
    return [c.as_dict() for c in PnvsSender.check(config)]


def test_unreachable_endpoint(pnvs_config):
    checks = by_check(
        _as_report({**pnvs_config, "SMSCODE_PNVS_ENDPOINT": f"127.0.0.1:{free_port()}"})
    )
    assert checks["endpoint"]["status"] == "fail"
    assert checks["endpoint"]["fix_key"] == "cli.doctor.fix.pnvs_endpoint"
    assert checks["credentials"]["key"] == "cli.doctor.credentials.no_answer"


def test_missing_sign_and_template(pnvs_config, pnvs_server):
    config = {**pnvs_config, "SMSCODE_PNVS_SIGN_NAME": None, "SMSCODE_PNVS_TEMPLATE_CODE": None}
    checks = by_check(_as_report(config))
    assert checks["sign"]["status"] == "fail"
    assert checks["sign"]["fix_key"] == "cli.doctor.fix.pnvs_sign_name"
    assert checks["template"]["status"] == "fail"


def test_templates_per_purpose_one_line_each(pnvs_config, pnvs_server):
    config = {
        **pnvs_config,
        "SMSCODE_PNVS_TEMPLATE_CODE": {"login": "100001", "signup": "100001", "reset": "100003"},
    }
    lines = [c for c in _as_report(config) if c["check"] == "template"]
    assert [c["subject"] for c in lines] == ["100001 (login, signup)", "100003 (reset)"]


def test_a_refused_configuration_is_reported_not_raised(pnvs_config):
    [check] = _as_report({**pnvs_config, "SMSCODE_PNVS_PROTOCOL": "ftp"})
    assert check["status"] == "fail" and "SMSCODE_PNVS_PROTOCOL" in check["params"]["reason"]
