"""``flask smscode doctor`` with SMSCODE_SENDER = "tencent": the real CLI and the real SDK
signing DescribeSmsSignList / DescribeSmsTemplateList calls to the loopback Tencent server.
A good account passes; pending, rejected and missing signatures and templates, and bad
credentials, each fail on their own line, in the operator's language."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from click.testing import Result
from flask import Flask

from flask_smscode.cli import smscode
from flask_smscode.tencent.checks import provider_checks
from tests.servers.redis_server import free_port
from tests.servers.tencent_server import SECRET_ID, SECRET_KEY

ENGLISH = {"LANGUAGE": "", "LC_ALL": "C.UTF-8"}
CHINESE = {"LANGUAGE": "zh_CN", "LC_ALL": "C.UTF-8"}


def doctor(app: Flask, env: dict[str, str] = ENGLISH) -> Result:
    result = app.test_cli_runner().invoke(smscode, ["doctor"], env=env)
    assert "Traceback" not in result.output
    assert SECRET_KEY not in result.output and SECRET_ID not in result.output
    return result


def line(output: str, label: str) -> str:
    found = [t for t in output.splitlines() if re.match(rf"^\S \w+\s+{re.escape(label)}", t)]
    assert len(found) == 1, (label, output)
    return found[0]


def checks(config: dict[str, Any]) -> dict[str, Any]:
    return {c.check: c for c in provider_checks(config)}


def test_a_good_account_passes(make_tencent_app: Callable[..., Flask], tencent_server):
    result = doctor(make_tencent_app(register=False))
    assert line(result.output, "credentials").startswith("✓ OK"), result.output
    assert line(result.output, "signature").startswith("✓ OK")
    assert line(result.output, "template 1001").startswith("✓ OK")
    assert line(result.output, "intl template 2001").startswith("✓ OK")
    assert line(result.output, "endpoint").startswith("! WARN")  # http: loopback only
    actions = {r.action for r in tencent_server.requests}
    assert actions == {"DescribeSmsSignList", "DescribeSmsTemplateList"}
    assert all(r.signature_ok for r in tencent_server.requests)


def test_json_output_in_chinese(make_tencent_app, tencent_server):
    tencent_server.set_sign("TestSign", status=1)
    result = doctor(make_tencent_app(register=False), {**CHINESE})
    result = (
        make_tencent_app(register=False)
        .test_cli_runner()
        .invoke(smscode, ["doctor", "--json"], env=CHINESE)
    )
    report = json.loads(result.output)
    [sign] = [c for c in report["checks"] if c["check"] == "sign"]
    assert sign["status"] == "fail" and sign["key"] == "cli.doctor.tencent.sign.pending"
    assert "审核" in sign["detail"] and sign["fix"]


def test_signature_pending_rejected_missing(tencent_config, tencent_server):
    tencent_server.set_sign("TestSign", status=1)
    assert checks(tencent_config)["sign"].key == "cli.doctor.tencent.sign.pending"
    tencent_server.set_sign("TestSign", status=-1, reply="资质不符")
    sign = checks(tencent_config)["sign"]
    assert sign.status == "fail" and sign.key == "cli.doctor.tencent.sign.rejected"
    assert sign.params["reason"] == "资质不符"
    tencent_server.remove_sign("TestSign")
    assert checks(tencent_config)["sign"].key == "cli.doctor.tencent.sign.missing"


def test_template_pending_rejected_missing(tencent_config, tencent_server):
    for status in (1, 2):  # under review; approved but not yet in effect
        tencent_server.set_template("1001", "验证码{1}", status=status)
        assert checks(tencent_config)["template"].key == "cli.doctor.tencent.template.pending"
    tencent_server.set_template("1001", "验证码{1}", status=-1, reply="内容不规范")
    template = checks(tencent_config)["template"]
    assert template.status == "fail" and template.key == "cli.doctor.tencent.template.rejected"
    tencent_server.remove_template("1001")
    assert checks(tencent_config)["template"].key == "cli.doctor.tencent.template.missing"


def test_template_parameters_must_match(tencent_config, tencent_server):
    tencent_server.set_template("1001", "验证码{1}，{2}分钟内有效")
    template = checks(tencent_config)["template"]
    assert template.key == "cli.doctor.tencent.template.params"
    minutes = {**tencent_config, "SMSCODE_TENCENT_TEMPLATE_MINUTES": True}
    assert checks(minutes)["template"].status == "ok"


def test_a_domestic_template_is_not_an_international_one(tencent_config):
    config = {**tencent_config, "SMSCODE_TENCENT_INTL_TEMPLATE_ID": "1001"}
    found = checks(config)["intl_template"]
    assert found.key == "cli.doctor.tencent.intl_template.missing"


def test_bad_credentials(tencent_config, tencent_server, make_tencent_app):
    wrong_key = checks({**tencent_config, "SMSCODE_TENCENT_SECRET_KEY": "wrong"})
    assert wrong_key["credentials"].key == "cli.doctor.tencent.credentials.wrong_key"
    assert wrong_key["sign"].status == "skip" and wrong_key["template"].status == "skip"
    unknown = checks({**tencent_config, "SMSCODE_TENCENT_SECRET_ID": "AKIDnobody000000"})
    assert unknown["credentials"].key == "cli.doctor.tencent.credentials.unknown_id"
    tencent_server.clock_offset = 900
    skewed = checks(tencent_config)
    assert skewed["credentials"].key == "cli.doctor.tencent.credentials.clock"
    tencent_server.clock_offset = 0
    result = doctor(make_tencent_app(register=False, SMSCODE_TENCENT_SECRET_KEY="wrong"))
    assert result.exit_code == 1
    failing = line(result.output, "credentials")
    assert failing.startswith("✗ FAIL") and "SecretKey" in failing


def test_no_answer(tencent_config):
    config = {**tencent_config, "SMSCODE_TENCENT_ENDPOINT": f"127.0.0.1:{free_port()}"}
    found = checks(config)["credentials"]
    assert found.key == "cli.doctor.tencent.credentials.no_answer"
    assert found.fix_key == "cli.doctor.tencent.fix.endpoint"


def test_a_broken_config_is_one_line(tencent_config):
    [check] = provider_checks({**tencent_config, "SMSCODE_TENCENT_SECRET_ID": None})
    assert check.key == "cli.doctor.config"
    assert "SMSCODE_TENCENT_SECRET_ID" in check.params["reason"]
