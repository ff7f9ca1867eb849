"""The suppression list (core/suppression.py) on every store (memory://, Redis, Cluster,
Sentinel), and what it blocks: notifications always (``send_message``, ``flask smscode
notify``), verification codes only with SMSCODE_SUPPRESS_CODES."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_smscode import AliyunSms, InvalidPhone, get_service, send_code
from flask_smscode.cli import smscode
from tests.helpers import E164, ENGLISH, PHONE

OTHER = "13900139000"
OTHER_E164 = "+8613900139000"


def test_add_list_remove(app: Flask) -> None:
    suppression = get_service(app).suppression
    assert suppression.entries() == []
    assert suppression.add(E164, "reply") is True
    assert suppression.add(E164, "cli") is False  # the first entry stays
    assert suppression.add(OTHER_E164, "cli") is True
    entries = suppression.entries()
    assert [(e.phone, e.source) for e in entries] == [(E164, "reply"), (OTHER_E164, "cli")]
    assert all(e.since_ms > 1_700_000_000_000 for e in entries)
    assert suppression.suppressed([E164, "+8613700137000", OTHER_E164]) == {E164, OTHER_E164}
    assert suppression.remove(E164) is True
    assert suppression.remove(E164) is False
    assert not suppression.is_suppressed(E164)


def test_many_numbers_are_checked_in_chunks(app: Flask) -> None:
    suppression = get_service(app).suppression
    phones = [f"+86138{i:08d}" for i in range(2500)]
    for phone in phones[::500]:
        suppression.add(phone)
    assert suppression.suppressed(phones) == set(phones[::500])


def test_send_message_skips_suppressed_numbers(app: Flask, sms_server: Any) -> None:
    service = get_service(app)
    service.suppression.add(E164, "reply")
    sms = AliyunSms.from_config(app.config, suppression=service.suppression.suppressed)
    answers = sms.send_message(
        [PHONE, OTHER, PHONE], {"name": "Zhang San", "time": "22:00"}, "SMS_NOTIFY"
    )
    assert isinstance(answers, list) and len(answers) == 1  # the shape callers know
    assert answers.suppressed == 1
    assert answers[0].phone_numbers == ("13900139000",)
    assert sms_server.messages_to(PHONE) == []
    assert len(sms_server.messages_to(OTHER)) == 1


def test_send_message_to_only_suppressed_numbers_sends_nothing(app: Flask, sms_server: Any) -> None:
    service = get_service(app)
    service.suppression.add(E164)
    sms = AliyunSms.from_config(app.config, suppression=service.suppression.suppressed)
    answers = sms.sendMessage(
        phoneList=[PHONE], params={"name": "Z", "time": "1"}, verifyTemplateCode="SMS_NOTIFY"
    )
    assert answers == [] and answers.suppressed == 1
    assert sms_server.sent == []


def test_notify_command_reports_the_suppressed_count(app: Flask, sms_server: Any) -> None:
    get_service(app).suppression.add(E164, "reply")
    result = app.test_cli_runner().invoke(
        smscode,
        [
            "notify",
            "--template",
            "SMS_NOTIFY",
            "--params",
            '{"name":"Zhang San","time":"22:00"}',
            "--phones",
            f"{PHONE},{OTHER}",
        ],
        env=ENGLISH,
    )
    assert result.exit_code == 0, result.output
    assert "Sent: 1 number(s) in 1 request(s)" in result.output
    assert "Suppressed (unsubscribed) numbers skipped: 1" in result.output
    assert sms_server.messages_to(PHONE) == []


def test_codes_still_go_to_a_suppressed_number_by_default(app: Flask, sms_server: Any) -> None:
    get_service(app).suppression.add(E164, "reply")
    with app.app_context():
        assert send_code(PHONE).delivery == "sent"
    assert len(sms_server.messages_to(PHONE)) == 1


def test_suppress_codes_refuses_codes_to_a_suppressed_number(
    make_app: Callable[..., Flask], sms_server: Any
) -> None:
    app = make_app(SMSCODE_SUPPRESS_CODES=True)
    get_service(app).suppression.add(E164, "reply")
    response = app.test_client().post("/sms/send", json={"phone": PHONE})
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_phone"
    assert PHONE not in str(body)
    assert sms_server.messages_to(PHONE) == []
    with app.app_context():  # another number is not affected
        assert send_code(OTHER).delivery == "sent"
    with app.app_context(), pytest.raises(InvalidPhone):
        send_code(PHONE)


def test_notify_people_csv_skips_suppressed_rows(
    app: Flask, sms_server: Any, tmp_path: Any
) -> None:
    get_service(app).suppression.add(E164, "reply")
    people = tmp_path / "people.csv"
    people.write_text(f"phone,name,time\n{PHONE},Zhang San,22:00\n{OTHER},Li Si,23:00\n")
    result = app.test_cli_runner().invoke(
        smscode,
        ["notify", "--template", "SMS_NOTIFY", "--file", str(people)],
        env=ENGLISH,
    )
    assert result.exit_code == 0, result.output
    assert "Suppressed (unsubscribed) numbers skipped: 1" in result.output
    assert sms_server.messages_to(PHONE) == []
    assert len(sms_server.messages_to(OTHER)) == 1


def test_send_batch_skips_suppressed_numbers(app: Flask, sms_server: Any) -> None:
    service = get_service(app)
    service.suppression.add(E164)
    sms = AliyunSms.from_config(app.config, suppression=service.suppression.suppressed)
    entries = [{"phone": PHONE, "params": {"name": "a", "time": "1"}}]
    answers = sms.send_batch(entries, "SMS_NOTIFY")
    assert answers == [] and answers.suppressed == 1 and sms_server.sent == []
    entries.append({"phone": OTHER, "params": {"name": "b", "time": "2"}})
    answers = sms.send_batch(entries, "SMS_NOTIFY")
    assert len(answers) == 1 and answers.suppressed == 1
    assert answers[0].phone_numbers == ("13900139000",)
