"""``flask smscode``: send, status, reset, notify and delivery, as an operator runs them.

Commands run through Flask's CLI runner against the real aliyun sender and the loopback
Dysmsapi server (send/status/reset on memory:// and on Redis); two tests run the real
``flask --app demo_app smscode ...`` command line in a subprocess, as a newcomer would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from flask_smscode import ConsoleSender, normalize_phone
from flask_smscode.cli import smscode
from tests.helpers import E164, ENGLISH, PHONE
from tests.servers.dysmsapi_server import CHINA_TZ

REPO_ROOT = Path(__file__).resolve().parents[2]
NOTIFY_PARAMS = '{"name":"Zhang San","time":"22:00"}'
COMMANDS = (
    *("send", "status", "reset", "notify", "delivery", "guard", "doctor"),
    *("receipts", "suppress", "stats"),  # the queue, the suppression list, the counters
)


def bulk_phones(count: int, start: int = 0) -> list[str]:
    """Valid mainland mobile numbers 13800130000... (checked by the first test)."""
    return [f"1380013{i:04d}" for i in range(start, start + count)]


# The expected output is English: pin the CLI's language whatever the machine's locale
# (with no LANG at all the CLI speaks SMSCODE_DEFAULT_LANGUAGE, Chinese).


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(smscode, list(args), env=ENGLISH)


def notify(
    app: Flask,
    *,
    template: str | None = "SMS_NOTIFY",
    params: str | None = NOTIFY_PARAMS,
    phones: str | None = None,
    file: Path | None = None,
    sign_name: str | None = None,
    out_id: str | None = None,
) -> Result:
    """``flask smscode notify`` with these options; None leaves an option out."""
    options = {
        "--template": template,
        "--params": params,
        "--phones": phones,
        "--file": None if file is None else str(file),
        "--sign-name": sign_name,
        "--out-id": out_id,
    }
    args = [part for name, value in options.items() if value is not None for part in (name, value)]
    return run(app, "notify", *args)


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def failed(result: Result, exit_code: int = 1) -> str:
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.output


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def verify(app: Flask, code: str, phone: str = PHONE, purpose: str = "login") -> Any:
    return app.test_client().post(
        "/sms/verify", json={"phone": phone, "code": code, "purpose": purpose}
    )


@pytest.fixture
def notify_app(aliyun_config: dict[str, Any]) -> Flask:
    """notify and delivery use only the Dysmsapi client: no store, so no Redis variant."""
    app = Flask("cli_notify_app")
    app.config.update(SECRET_KEY="test-secret-key", TESTING=True, **aliyun_config)
    return app


def test_bulk_numbers_are_valid_mobiles() -> None:
    phones = bulk_phones(2500)
    assert len({normalize_phone(p) for p in phones}) == 2500


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(notify_app: Flask, command: str | None) -> None:
    output = ok(run(notify_app, *([command] if command else []), "--help"))
    assert "Usage:" in output
    if command is None:
        assert all(name in output for name in COMMANDS)


# -- send ------------------------------------------------------------------------------------
def test_send_with_aliyun_sender_prints_no_code(
    make_app: Callable[..., Flask], sms_server: Any
) -> None:
    output = ok(run(make_app(), "send", PHONE))
    assert output == (
        "Code sent to 138****8000 for login (delivery: sent); expires in 300 s, "
        "resend allowed in 60 s.\n"
    )
    [sms] = sms_server.sent
    assert sms.phone_numbers == [PHONE]
    assert sms.code not in output and "Code:" not in output


def test_send_with_console_sender_prints_a_code_that_verifies(
    make_app: Callable[..., Flask], sms_server: Any
) -> None:
    app = make_app(SMSCODE_SENDER="console")
    output = ok(run(app, "send", "+86 138 0013 8000", "--purpose", "signup"))
    assert output.startswith("Code sent to 138****8000 for signup (delivery: sent);")
    match = re.search(r"^Code: (\d{6})$", output, re.M)
    assert match, output
    assert sms_server.requests == []  # no SMS for the console sender
    service = app.extensions["smscode"]
    assert type(service.sender) is ConsoleSender  # the echoing wrapper is gone again
    assert "Error: throttled:" in failed(run(app, "send", PHONE, "--purpose", "signup"))
    assert type(service.sender) is ConsoleSender  # also after a refusal
    assert verify(app, wrong(match.group(1)), purpose="signup").status_code == 400
    response = verify(app, match.group(1), purpose="signup")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["phone"] == E164


def test_send_builds_the_service_when_the_app_did_not(
    make_app: Callable[..., Flask], sms_server: Any
) -> None:
    app = make_app(register=False)
    assert "smscode" not in app.extensions
    ok(run(app, "send", PHONE))
    assert "smscode" in app.extensions and len(sms_server.sent) == 1


def test_second_send_is_throttled(make_app: Callable[..., Flask], sms_server: Any) -> None:
    app = make_app()
    ok(run(app, "send", PHONE))
    output = failed(run(app, "send", PHONE))
    assert re.fullmatch(
        r"Error: throttled: A code was sent to this phone recently; wait before "
        r"asking for another\. \(retry in (59|60) s\)\n",
        output,
    ), output
    assert len(sms_server.sent) == 1


def test_send_refusals_are_clear(make_app: Callable[..., Flask], sms_server: Any) -> None:
    app = make_app()
    assert "Error: invalid_phone:" in failed(run(app, "send", "12345"))
    output = failed(run(app, "send", PHONE, "--purpose", "nope"))
    assert "Error: invalid_request: purpose must be one of: login, signup, reset_password" in output
    sms_server.fail_next("isv.AMOUNT_NOT_ENOUGH")
    assert "Error: provider_error:" in failed(run(app, "send", PHONE))
    assert sms_server.sent == []


def test_configuration_error_is_clear(make_app: Callable[..., Flask]) -> None:
    app = make_app(register=False, SMSCODE_CODE_LENGTH=3)
    assert "SMSCODE_CODE_LENGTH" in failed(run(app, "send", PHONE))


def test_send_to_a_test_number(make_app: Callable[..., Flask], sms_server: Any) -> None:
    app = make_app(SMSCODE_TEST_NUMBERS={PHONE: "246810"})
    output = ok(run(app, "send", PHONE))
    assert "test number" in output and "246810" not in output
    assert sms_server.requests == []
    console = make_app(SMSCODE_SENDER="console", SMSCODE_TEST_NUMBERS={PHONE: "246810"})
    assert "Code: 246810" in ok(run(console, "send", PHONE))


# -- status ----------------------------------------------------------------------------------
def test_status_before_and_after_send_and_wrong_code(
    make_app: Callable[..., Flask], sms_server: Any
) -> None:
    app = make_app()
    assert ok(run(app, "status", PHONE)) == (
        "Phone: 138****8000 (+8613800138000)\n"
        "Purpose: login\n"
        "Code live: no\n"
        "OutId of last send: none\n"
        "Attempts left: 5 of 5\n"
        "Resend cooldown: none\n"
        "Sends: 0 of 5 per 1 hour, 0 of 10 per 1 day\n"
    )

    ok(run(app, "send", PHONE))
    [sms] = sms_server.sent
    output = ok(run(app, "status", "+8613800138000"))
    ttl = int(re.search(r"^Code live: yes, (\d+) s left$", output, re.M).group(1))
    assert 295 <= ttl <= 300
    assert f"OutId of last send: {sms.out_id}\n" in output
    assert re.search(r"^Resend cooldown: (5\d|60) s$", output, re.M)
    assert "Attempts left: 5 of 5\n" in output
    assert "Sends: 1 of 5 per 1 hour, 1 of 10 per 1 day\n" in output
    assert sms.code not in output

    assert verify(app, wrong(sms.code)).status_code == 400
    output = ok(run(app, "status", PHONE))
    window = re.search(
        r"^Attempts left: 4 of 5 \(failure window resets in (\d+) s\)$", output, re.M
    )
    assert window and 890 <= int(window.group(1)) <= 900, output

    # Failures and codes are per purpose; the cooldown and caps are per phone.
    output = ok(run(app, "status", PHONE, "--purpose", "signup"))
    assert "Code live: no\n" in output and "Attempts left: 5 of 5\n" in output
    assert "Resend cooldown: none" not in output


def test_status_json(make_app: Callable[..., Flask], sms_server: Any) -> None:
    app = make_app()
    ok(run(app, "send", PHONE))
    assert verify(app, wrong(sms_server.last_code(PHONE))).status_code == 400
    data = json.loads(ok(run(app, "status", PHONE, "--json")))
    assert set(data) == {
        "phone",
        "purpose",
        "code_live",
        "code_ttl",
        "out_id",
        "attempts_left",
        "max_attempts",
        "failures_ttl",
        "cooldown",
        "sends",
        "sender",
    }
    assert data["phone"] == E164 and data["purpose"] == "login" and data["sender"] == "aliyun"
    assert data["code_live"] is True and 295 <= data["code_ttl"] <= 300
    assert data["out_id"] == sms_server.sent[0].out_id
    assert data["attempts_left"] == 4 and data["max_attempts"] == 5
    assert 0 < data["failures_ttl"] <= 900 and 0 < data["cooldown"] <= 60
    assert data["sends"] == [
        {"limit": "5 per 1 hour", "used": 1, "amount": 5, "seconds": 3600},
        {"limit": "10 per 1 day", "used": 1, "amount": 10, "seconds": 86400},
    ]


def test_status_refusals(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    assert "Error: invalid_phone:" in failed(run(app, "status", "not a phone"))
    assert "Error: invalid_request:" in failed(run(app, "status", PHONE, "--purpose", "x"))


# -- reset -----------------------------------------------------------------------------------
def test_reset_unlocks_a_throttled_phone(make_app: Callable[..., Flask], sms_server: Any) -> None:
    app = make_app()
    ok(run(app, "send", PHONE))
    failed(run(app, "send", PHONE))
    # the code, the cooldown and the send counters
    assert ok(run(app, "reset", PHONE)) == (
        "Reset 138****8000: removed 3 entries (codes, failures and throttles).\n"
    )
    assert "Resend cooldown: none" in ok(run(app, "status", PHONE))
    ok(run(app, "send", PHONE))
    assert len(sms_server.sent) == 2
    code = sms_server.last_code(PHONE)
    assert verify(app, code).status_code == 200
    assert "removed 0 entries" in ok(run(app, "reset", "13900139000"))


def test_reset_clears_failures(make_app: Callable[..., Flask], sms_server: Any) -> None:
    app = make_app(SMSCODE_MAX_ATTEMPTS=2)
    ok(run(app, "send", PHONE))
    code = sms_server.last_code(PHONE)
    for _ in range(2):
        assert verify(app, wrong(code)).status_code == 400
    assert "Attempts left: 0 of 2" in ok(run(app, "status", PHONE))
    assert verify(app, code).status_code == 429  # locked out
    output = ok(run(app, "reset", PHONE, "--purpose", "login"))
    assert output.startswith("Reset 138****8000 for login: removed ")
    assert "Attempts left: 2 of 2\n" in ok(run(app, "status", PHONE))
    ok(run(app, "send", PHONE))
    assert verify(app, sms_server.last_code(PHONE)).status_code == 200


def test_reset_refusals(make_app: Callable[..., Flask]) -> None:
    app = make_app()
    assert "Error: invalid_phone:" in failed(run(app, "reset", "123"))
    assert "Error: invalid_request:" in failed(run(app, "reset", PHONE, "--purpose", "x"))


# -- notify ----------------------------------------------------------------------------------
def assert_no_params(output: str) -> None:
    assert "Zhang San" not in output and "22:00" not in output


def test_notify_phones(notify_app: Flask, sms_server: Any) -> None:
    output = ok(notify(notify_app, phones="13800130001, 13800130002\n+8613800130003 13800130001"))
    [sms] = sms_server.sent
    assert sms.phones == ["13800130001", "13800130002", "13800130003"]
    assert sms.template_code == "SMS_NOTIFY" and sms.sign_name == "TestSign"
    assert sms.template_param == {"name": "Zhang San", "time": "22:00"}
    assert "Sent: 3 number(s) in 1 request(s)\n" in output
    assert f"BizId {sms.biz_id}, RequestId {sms.request_id}" in output
    assert "Duplicates skipped: 1" in output
    assert "Invalid" not in output and "Rejected" not in output
    assert_no_params(output)
    assert "138****0001" not in output and "13800130001" not in output


def test_notify_sign_name_and_out_id(notify_app: Flask, sms_server: Any) -> None:
    ok(notify(notify_app, phones=PHONE, sign_name="阿里云短信测试", out_id="campaign-7"))
    [sms] = sms_server.sent
    assert sms.sign_name == "阿里云短信测试" and sms.out_id == "campaign-7"


def test_notify_csv_with_a_header(notify_app: Flask, sms_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(
        "姓名,手机号,备注\n张三,13800130001,vip\n李四,138 0013 0002,\n\n".encode("utf-8-sig")
    )
    output = ok(notify(notify_app, file=path))
    [sms] = sms_server.sent
    assert sms.phones == ["13800130001", "13800130002"]
    assert "Sent: 2 number(s) in 1 request(s)" in output
    assert "张三" not in output


@pytest.mark.parametrize(
    "content",
    [
        "Name,MOBILE\nLi,13800130001\nWang,13800130002\n",  # a named column, any case
        "13800130001,Li\n13800130002,Wang\n",  # no header: the first column
        "name,tel\n13800130001,x\n13800130002,y\n",  # unknown header: the first column
    ],
)
def test_notify_csv_columns(
    notify_app: Flask, sms_server: Any, tmp_path: Path, content: str
) -> None:
    path = tmp_path / "list.csv"
    path.write_text(content, encoding="utf-8")
    ok(notify(notify_app, file=path))
    [sms] = sms_server.sent
    assert sms.phones == ["13800130001", "13800130002"]


def test_notify_text_file(notify_app: Flask, sms_server: Any, tmp_path: Path) -> None:
    path = tmp_path / "phones.txt"
    path.write_text(
        "# customers for the 22:00 slot\n13800130001\n\n  +86 138 0013 0002  \n"
        "13800130003  # Wang\n",
        encoding="utf-8",
    )
    output = ok(notify(notify_app, file=path))
    [sms] = sms_server.sent
    assert sms.phones == ["13800130001", "13800130002", "13800130003"]
    assert "Sent: 3 number(s) in 1 request(s)" in output


def test_notify_2500_numbers_in_three_calls(
    notify_app: Flask, sms_server: Any, tmp_path: Path
) -> None:
    phones = bulk_phones(2500)
    path = tmp_path / "big.txt"
    path.write_text("\n".join(phones) + "\n", encoding="utf-8")
    result = notify(notify_app, file=path)
    output = ok(result)
    assert len(sms_server.sent) == 3
    assert all(len(sms.phone_numbers) <= 1000 for sms in sms_server.sent)
    counted = Counter(p for sms in sms_server.sent for p in sms.phones)
    assert set(counted) == set(phones) and set(counted.values()) == {1}
    assert "Sent: 2500 number(s) in 3 request(s)\n" in output
    for sms in sms_server.sent:
        assert f"{len(sms.phone_numbers)} number(s): BizId {sms.biz_id}" in output
    assert "Sending" in result.stderr  # the progress bar goes to stderr
    assert_no_params(output)


def test_notify_skips_and_counts_invalid_numbers(notify_app: Flask, sms_server: Any) -> None:
    output = failed(notify(notify_app, phones="13800130001,12345,abc98,13800130002"))
    [sms] = sms_server.sent
    assert sms.phones == ["13800130001", "13800130002"]
    assert "Sent: 2 number(s) in 1 request(s)" in output
    assert "Invalid numbers skipped: 2\n  entry 2: ***45\n  entry 3: ***98\n" in output
    assert "12345" not in output and "abc98" not in output


def test_notify_with_only_invalid_numbers(
    notify_app: Flask, sms_server: Any, tmp_path: Path
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("12345\n999\n", encoding="utf-8")
    output = failed(notify(notify_app, file=path))
    assert "Invalid numbers skipped: 2\n  line 1: ***45\n  line 2: ***99\n" in output
    assert "Error: No valid mobile numbers in bad.txt; nothing was sent." in output
    assert sms_server.requests == []


def test_notify_rejected_batch_exits_1(notify_app: Flask, sms_server: Any, tmp_path: Path) -> None:
    phones = bulk_phones(2500)
    path = tmp_path / "big.csv"
    path.write_text("phone\n" + "\n".join(phones) + "\n", encoding="utf-8")
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    output = failed(notify(notify_app, file=path))
    assert len(sms_server.sent) == 2
    delivered = sum(len(sms.phone_numbers) for sms in sms_server.sent)
    rejected = re.search(
        r"^Rejected: (\d+) number\(s\) — isv\.BUSINESS_LIMIT_CONTROL "
        r"\(RequestId [0-9A-F-]{36}\)$",
        output,
        re.M,
    )
    assert rejected, output
    assert int(rejected.group(1)) == 2500 - delivered
    assert f"Sent: {delivered} number(s) in 2 request(s)" in output
    assert_no_params(output)


def test_notify_failed_request(notify_app: Flask, sms_server: Any) -> None:
    sms_server.drop_next()
    output = failed(notify(notify_app, phones="13800130001 13800130002"))
    assert "Sent: 0 number(s) in 0 request(s)" in output
    assert re.search(r"^Failed: 2 number\(s\) — \S+ \(RequestId -", output, re.M), output


def test_notify_provider_refuses_the_template(notify_app: Flask, sms_server: Any) -> None:
    output = failed(notify(notify_app, template="SMS_UNKNOWN", params="{}", phones=PHONE))
    assert "Rejected: 1 number(s) — isv.SMS_TEMPLATE_ILLEGAL" in output


@pytest.mark.parametrize("params", ["not json", "[1, 2]", '"text"', "{'single': 'quotes'}"])
def test_notify_bad_params(notify_app: Flask, sms_server: Any, params: str) -> None:
    output = failed(notify(notify_app, params=params, phones=PHONE), exit_code=2)
    assert "Invalid value for --params" in output and "JSON object" in output
    assert sms_server.requests == []


def test_notify_needs_exactly_one_source(
    notify_app: Flask, sms_server: Any, tmp_path: Path
) -> None:
    assert "exactly one of --phones or --file" in failed(notify(notify_app), 2)
    path = tmp_path / "p.txt"
    path.write_text(PHONE, encoding="utf-8")
    output = failed(notify(notify_app, phones=PHONE, file=path), 2)
    assert "exactly one of --phones or --file" in output
    assert "does not exist" in failed(notify(notify_app, file=tmp_path / "missing.csv"), 2)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody yet\n\n", encoding="utf-8")
    assert "No phone numbers found in empty.txt" in failed(notify(notify_app, file=empty), 2)
    latin = tmp_path / "latin1.csv"
    latin.write_bytes("手机\n13800130001\n".encode("gbk"))
    assert "not UTF-8" in failed(notify(notify_app, file=latin), 2)
    assert "Missing option '--template'" in failed(
        notify(notify_app, template=None, params="{}", phones=PHONE), 2
    )
    assert sms_server.requests == []


def test_notify_missing_credentials(
    aliyun_config: dict[str, Any], sms_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", raising=False)
    app = Flask("cli_no_key")
    app.config.update(aliyun_config, SMSCODE_ALIYUN_ACCESS_KEY_ID=None)
    output = failed(notify(app, phones=PHONE))
    assert "SMSCODE_ALIYUN_ACCESS_KEY_ID" in output
    app.config.update(aliyun_config, SMSCODE_ALIYUN_SIGN_NAME=None)
    output = failed(notify(app, phones=PHONE))
    assert "SMSCODE_ALIYUN_SIGN_NAME" in output
    assert sms_server.requests == []


# -- delivery --------------------------------------------------------------------------------
def notify_one(app: Flask, phone: str = PHONE) -> None:
    ok(notify(app, phones=phone))


def test_delivery_table(notify_app: Flask, sms_server: Any) -> None:
    notify_one(notify_app)
    notify_one(notify_app)
    first, second = sms_server.sent
    sms_server.set_delivery_status(second.biz_id, 2, "MOBILE_NOT_ON_SERVICE")
    output = ok(run(notify_app, "delivery", PHONE))
    lines = output.splitlines()
    assert lines[0].split() == ["Phone", "Status", "Error", "Template", "Sent", "Received", "OutId"]
    rows = {line.split()[1]: line for line in lines[1:3]}
    assert set(rows) == {"DELIVERED", "FAILED"}
    assert rows["FAILED"].startswith("138****8000")
    assert "MOBILE_NOT_ON_SERVICE" in rows["FAILED"] and second.out_id in rows["FAILED"]
    assert "SMS_NOTIFY" in rows["DELIVERED"] and first.out_id in rows["DELIVERED"]
    today = datetime.now(CHINA_TZ).date().isoformat()
    assert lines[3] == f"2 of 2 record(s) on {today}"
    assert_no_params(output)
    assert PHONE not in output

    output = ok(run(notify_app, "delivery", PHONE, "--biz-id", first.biz_id))
    assert "DELIVERED" in output and "FAILED" not in output
    assert output.endswith(f"1 of 1 record(s) on {today}\n")


def test_delivery_never_shows_a_verification_code(
    make_app: Callable[..., Flask], sms_server: Any
) -> None:
    app = make_app()
    ok(run(app, "send", PHONE))
    code = sms_server.last_code(PHONE)
    output = ok(run(app, "delivery", PHONE))
    assert "DELIVERED" in output and "SMS_123456789" in output
    assert code not in output
    data = json.loads(ok(run(app, "delivery", PHONE, "--json")))
    assert code not in json.dumps(data)
    assert data["records"][0]["out_id"] == sms_server.sent[0].out_id


def test_delivery_json(notify_app: Flask, sms_server: Any) -> None:
    notify_one(notify_app)
    sms_server.set_delivery_status(sms_server.sent[0].biz_id, 2, "MOBILE_NOT_ON_SERVICE")
    data = json.loads(ok(run(notify_app, "delivery", PHONE, "--json")))
    assert data["total_count"] == 1 and data["page"] == 1 and data["page_size"] == 10
    assert data["send_date"] == datetime.now(CHINA_TZ).date().isoformat()
    [record] = data["records"]
    assert record["phone"] == "138****8000"
    assert record["status"] == "FAILED" and record["status_code"] == 2
    assert record["error_code"] == "MOBILE_NOT_ON_SERVICE"
    assert record["template_code"] == "SMS_NOTIFY"
    assert record["out_id"] == sms_server.sent[0].out_id
    assert datetime.fromisoformat(record["send_time"]).utcoffset() == timedelta(hours=8)
    assert "content" not in record


def test_delivery_date_and_pages(notify_app: Flask, sms_server: Any) -> None:
    day = datetime.now(CHINA_TZ) - timedelta(days=3)
    for _ in range(3):
        sms_server.add_delivery_report(
            PHONE,
            template_code="SMS_NOTIFY",
            send_date=day,
            template_param={"name": "Zhang San", "time": "22:00"},
        )
    output = ok(run(notify_app, "delivery", PHONE))
    assert output.startswith("0 of 0 record(s)")
    for spelling in (day.strftime("%Y-%m-%d"), day.strftime("%Y%m%d")):
        output = ok(run(notify_app, "delivery", PHONE, "--date", spelling, "--page-size", "2"))
        assert output.endswith(f"2 of 3 record(s) on {day.date().isoformat()} (more: --page 2)\n")
        assert_no_params(output)
    output = ok(
        run(
            notify_app,
            "delivery",
            PHONE,
            "--date",
            day.strftime("%Y%m%d"),
            "--page-size",
            "2",
            "--page",
            "2",
        )
    )
    assert output.endswith(f"1 of 3 record(s) on {day.date().isoformat()}\n")


def test_delivery_refusals(notify_app: Flask, sms_server: Any) -> None:
    assert "YYYY-MM-DD" in failed(run(notify_app, "delivery", PHONE, "--date", "21/11"), 2)
    assert "--page-size" in failed(run(notify_app, "delivery", PHONE, "--page-size", "51"), 2)
    assert "--page" in failed(run(notify_app, "delivery", PHONE, "--page", "0"), 2)
    assert "46001" in failed(run(notify_app, "delivery", "12345"))
    sms_server.http_error_next(503)
    output = failed(run(notify_app, "delivery", PHONE))
    assert "46002" in output and "ServiceUnavailable" in output
    assert sms_server.requests[-1].action == "QuerySendDetails"


# -- the real command line -------------------------------------------------------------------
def demo_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus anything that would configure the demo."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SMSCODE_", "FLASK_", "ALIBABA_CLOUD_"))
        and k not in ("REDIS_URL", "SECRET_KEY")
    }
    env.update(ENGLISH)
    env.update(extra)
    return env


def flask_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "demo_app", "smscode", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_command_line_send_and_help_with_the_demo() -> None:
    done = flask_cli("send", PHONE, env=demo_env())
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Code sent to 138****8000 for login (delivery: sent);")
    assert re.search(r"^Code: \d{6}$", done.stdout, re.M), done.stdout
    assert "Traceback" not in done.stderr

    done = flask_cli("--help", env=demo_env())
    assert done.returncode == 0, done.stderr
    listed = re.findall(r"^  (\w+)  ", done.stdout, re.M)
    assert sorted(listed) == sorted(COMMANDS)


def test_command_line_notify_reaches_the_provider(sms_server: Any) -> None:
    env = demo_env(
        SMSCODE_ALIYUN_ACCESS_KEY_ID="test-key-id",
        SMSCODE_ALIYUN_ACCESS_KEY_SECRET="test-key-secret",
        SMSCODE_ALIYUN_SIGN_NAME="TestSign",
        SMSCODE_ALIYUN_ENDPOINT=sms_server.endpoint,
        SMSCODE_ALIYUN_PROTOCOL="http",
    )
    done = flask_cli(
        "notify",
        "--template",
        "SMS_NOTIFY",
        "--params",
        '{"name":"x","time":"22:00"}',
        "--phones",
        f"{PHONE},13900139000",
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [sms] = sms_server.sent
    assert sms.phones == [PHONE, "13900139000"]
    assert sms.template_param == {"name": "x", "time": "22:00"}
    assert sms.access_key_id == "test-key-id"
    assert "Sent: 2 number(s) in 1 request(s)" in done.stdout
    assert "22:00" not in done.stdout + done.stderr
