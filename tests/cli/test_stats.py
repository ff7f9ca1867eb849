"""``flask smscode stats``: the store's hourly counters for the last hour and day, as text
in the operator's language and as one JSON object."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask

from flask_smscode.cli import smscode
from tests.helpers import ENGLISH, send, verify, wrong

SECRET = "cli-stats-report-secret-0123456789abcdef"
MOBILE, UNICOM = "13800138000", "18600186000"


def run(app: Flask, *args: str, env: dict[str, str] | None = None) -> Any:
    return app.test_cli_runner().invoke(smscode, ["stats", *args], env=env or ENGLISH)


def traffic(make_app: Any, sms_server: Any) -> Flask:
    app: Flask = make_app(SMSCODE_ALIYUN_REPORT_SECRET=SECRET)
    client = app.test_client()
    assert send(client, MOBILE).status_code == 200
    assert send(client, UNICOM).status_code == 200
    assert send(client, MOBILE).status_code == 429  # cooldown
    assert verify(client, sms_server.last_code(MOBILE), MOBILE).status_code == 200
    assert verify(client, wrong(sms_server.last_code(UNICOM)), UNICOM).status_code == 400
    report = sms_server.delivery_report(sms_server.last_sms(MOBILE), report_delay=4)
    answer = client.post(f"/sms/reports/{SECRET}", data=json.dumps([report]))
    assert answer.status_code == 200
    return app


def test_json_shape(make_app, sms_server):
    app = traffic(make_app, sms_server)
    result = run(app, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [w["hours"] for w in data["windows"]] == [1, 24]
    for window in data["windows"]:
        assert set(window) == {
            "hours",
            "since",
            "sends",
            "verified",
            "conversion",
            "refusals",
            "guard_blocks",
            "verify_failures",
            "delivery",
        }
        assert window["since"].endswith(":00:00Z")
        assert (window["sends"], window["verified"], window["conversion"]) == (2, 1, 0.5)
        assert window["refusals"] == {"phone": 1}
        assert window["guard_blocks"] == 0
        assert window["verify_failures"] == {"invalid": 1}
        (row,) = window["delivery"]
        assert (row["carrier"], row["vendor"], row["count"]) == ("china_mobile", "aliyun", 1)
        assert 2 < row["p50_seconds"] <= 5  # interpolated inside the (2, 5] bucket
    assert MOBILE not in result.output and UNICOM not in result.output


def test_hours_option_sets_the_longer_window(make_app, sms_server):
    app = traffic(make_app, sms_server)
    data = json.loads(run(app, "--json", "--hours", "72").output)
    assert [w["hours"] for w in data["windows"]] == [1, 72]
    assert run(app, "--hours", "0").exit_code == 2
    assert run(app, "--hours", str(14 * 24 + 1)).exit_code == 2


def test_text_in_english_and_chinese(make_app, sms_server):
    app = traffic(make_app, sms_server)
    english = run(app)
    assert english.exit_code == 0, english.output
    assert "Last 1 h" in english.output and "Last 24 h" in english.output
    assert "Sends 2, verified 1, conversion 50.0%" in english.output
    assert "Refused sends: phone 1" in english.output
    assert "Guard blocks: 0" in english.output
    assert "interpolated" in english.output
    assert "china_mobile" in english.output
    chinese = run(app, env={"LANGUAGE": "zh", "LC_ALL": "C.UTF-8"})
    assert chinese.exit_code == 0, chinese.output
    assert "转化率 50.0%" in chinese.output and "防刷拦截" in chinese.output
