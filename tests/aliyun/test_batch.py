"""Per-recipient notifications (SendBatchSms) and the uplink extension code (SmsUpExtendCode).

The real client against the loopback Dysmsapi server, which checks SendBatchSms as Alibaba
documents it (JSON arrays of equal length, at most 100 numbers, signatures that exist) and
records each number's message with its own signature, values and extension code.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from flask import Flask

from flask_smscode import (
    AliyunInvalidArguments,
    AliyunProviderRefused,
    AliyunSettings,
    AliyunSms,
    BatchEntry,
)
from flask_smscode.aliyun import MAX_PHONES_PER_BATCH_CALL
from flask_smscode.cli import smscode
from tests.servers.dysmsapi_server import DysmsapiServer

ENGLISH = {"LANGUAGE": "", "LC_ALL": "C.UTF-8"}


def phone(i: int) -> str:
    return f"1380013{i:04d}"


def people(count: int) -> list[BatchEntry]:
    return [
        BatchEntry(phone(i), {"name": f"客户{i}", "time": f"{i % 24:02d}:00"}) for i in range(count)
    ]


@pytest.fixture
def sms(aliyun_config: dict[str, Any]) -> AliyunSms:
    return AliyunSms.from_config(aliyun_config)


def batch_calls(server: DysmsapiServer) -> list[Any]:
    return [r for r in server.requests if r.action == "SendBatchSms"]


# -- the client -------------------------------------------------------------------------------
def test_250_entries_go_out_in_calls_of_100_100_50(
    sms: AliyunSms, sms_server: DysmsapiServer
) -> None:
    answers = sms.send_batch(people(250), "SMS_NOTIFY")
    assert MAX_PHONES_PER_BATCH_CALL == 100
    assert [len(a.phone_numbers) for a in answers] == [100, 100, 50]  # in entry order
    assert all(a.ok and a.biz_id and a.request_id for a in answers)
    assert sorted(
        len(json.loads(r.params["PhoneNumberJson"])) for r in batch_calls(sms_server)
    ) == [50, 100, 100]
    assert len(sms_server.sent) == 250
    for i in (0, 99, 100, 249):  # each number got its own values
        sms = sms_server.last_sms(phone(i))
        assert sms.template_param == {"name": f"客户{i}", "time": f"{i % 24:02d}:00"}
        assert sms.content == f"【TestSign】客户{i}，您预约的时间为{i % 24:02d}:00。"


def test_concurrency_is_bounded_by_max_concurrency(
    aliyun_config: dict[str, Any], sms_server: DysmsapiServer
) -> None:
    client = AliyunSms.from_settings(AliyunSettings.from_config(aliyun_config, max_concurrency=2))
    in_flight, peak, lock = 0, 0, threading.Lock()
    real = client._send_chunk

    def counting(*args: Any) -> Any:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            return real(*args)
        finally:
            with lock:
                in_flight -= 1

    client._send_chunk = counting  # type: ignore[method-assign]
    sms_server.stall_next(0.2, times=5)  # every call is slow: they overlap if they can
    answers = client.send_batch(people(500), "SMS_NOTIFY")
    assert len(answers) == 5 and all(a.ok for a in answers)
    assert peak == 2
    assert len(sms_server.sent) == 500


def test_signatures_and_extend_codes_per_entry(sms: AliyunSms, sms_server: DysmsapiServer) -> None:
    sms.send_batch(
        [
            BatchEntry(phone(1), {"name": "张三", "time": "9:00"}, "阿里云短信测试", "901"),
            {
                "phone": "+86 138 0013 0002",
                "params": {"name": "Li", "time": 10},
                "sms_up_extend_code": "902",
            },
        ],
        "SMS_NOTIFY",
    )
    [call] = batch_calls(sms_server)
    assert json.loads(call.params["SignNameJson"]) == ["阿里云短信测试", "TestSign"]
    assert json.loads(call.params["SmsUpExtendCodeJson"]) == ["901", "902"]
    first, second = sms_server.sent
    assert (first.sign_name, first.sms_up_extend_code, first.template_param["name"]) == (
        "阿里云短信测试",
        "901",
        "张三",
    )
    assert (second.phones, second.sign_name, second.template_param) == (
        ["13800130002"],
        "TestSign",
        {"name": "Li", "time": "10"},
    )  # numbers sent as text
    assert first.biz_id == second.biz_id  # one call


def test_duplicates_exact_ones_dropped_different_values_kept(
    sms: AliyunSms, sms_server: DysmsapiServer
) -> None:
    entries = [
        BatchEntry(phone(1), {"name": "A", "time": "1"}),
        BatchEntry("+86 138-0013-0001", {"name": "A", "time": "1"}),  # same, respelt
        BatchEntry(phone(1), {"name": "A", "time": "2"}),
    ]  # another booking
    plan = sms.prepare_batch(entries)
    assert plan.duplicates == 1 and [r.index for r in plan.ready] == [0, 2]
    sms.send_batch(entries, "SMS_NOTIFY")
    assert [m.template_param["time"] for m in sms_server.messages_to(phone(1))] == ["1", "2"]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (BatchEntry("12345", {"name": "A", "time": "1"}), "phone"),
        (BatchEntry("+852 5123 4567", {"name": "A", "time": "1"}), "phone"),  # region not allowed
        (BatchEntry(phone(1), {"name": ["A"], "time": "1"}), "params"),
        (BatchEntry(phone(1), {"name": None, "time": "1"}), "params"),
        (BatchEntry(phone(1), "name=A"), "params"),  # type: ignore[arg-type]
        (
            BatchEntry(phone(1), {"name": "A", "time": "1"}, sms_up_extend_code="12a"),
            "sms_up_extend_code",
        ),
        (
            BatchEntry(phone(1), {"name": "A", "time": "1"}, sms_up_extend_code="12345678"),
            "sms_up_extend_code",
        ),
        ({"mobile": phone(1)}, "phone"),
    ],
)
def test_invalid_entries_refuse_the_whole_batch(
    sms: AliyunSms, sms_server: DysmsapiServer, entry: Any, field: str
) -> None:
    good = BatchEntry(phone(2), {"name": "B", "time": "2"})
    with pytest.raises(AliyunInvalidArguments) as info:
        sms.send_batch([good, entry], "SMS_NOTIFY")
    assert info.value.code == 46001
    assert f"entry 2 {field}" in str(info.value)
    assert "A" not in str(info.value).replace("Alibaba", "")  # values are never echoed
    assert sms_server.requests == []


def test_no_sign_name_and_no_template(
    aliyun_config: dict[str, Any], sms_server: DysmsapiServer
) -> None:
    client = AliyunSms.from_config({**aliyun_config, "SMSCODE_ALIYUN_SIGN_NAME": None})
    entry = BatchEntry(phone(1), {"name": "A", "time": "1"})
    with pytest.raises(AliyunInvalidArguments, match="entry 1 sign_name"):
        client.send_batch([entry], "SMS_NOTIFY")
    with pytest.raises(AliyunInvalidArguments, match="template"):
        client.send_batch([entry], "")
    with pytest.raises(AliyunInvalidArguments, match="empty"):
        client.send_batch([], "SMS_NOTIFY")
    client.send_batch([entry], "SMS_NOTIFY", sign_name="TestSign")  # the call's default
    assert sms_server.sent[-1].sign_name == "TestSign"


def test_extend_codes_for_every_entry_or_none(sms: AliyunSms, sms_server: DysmsapiServer) -> None:
    entries = [
        BatchEntry(phone(1), {"name": "A", "time": "1"}, sms_up_extend_code="7"),
        BatchEntry(phone(2), {"name": "B", "time": "2"}),
    ]
    with pytest.raises(AliyunInvalidArguments, match="entry 2 sms_up_extend_code"):
        sms.send_batch(entries, "SMS_NOTIFY")
    assert sms_server.requests == []


def test_skip_invalid_leaves_out_bad_numbers_only(
    sms: AliyunSms, sms_server: DysmsapiServer
) -> None:
    answers = sms.send_batch(
        [
            BatchEntry("12345", {"name": "A", "time": "1"}),
            BatchEntry(phone(2), {"name": "B", "time": "2"}),
        ],
        "SMS_NOTIFY",
        skip_invalid=True,
    )
    assert [a.phone_numbers for a in answers] == [("13800130002",)]


def test_a_refused_call_is_reported_after_every_call_ran(
    sms: AliyunSms, sms_server: DysmsapiServer
) -> None:
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    with pytest.raises(AliyunProviderRefused) as info:
        sms.send_batch(people(250), "SMS_NOTIFY")
    responses = info.value.responses
    assert sorted(r.ok for r in responses) == [False, True, True]
    assert len(sms_server.sent) == sum(len(r.phone_numbers) for r in responses if r.ok)
    assert "SendBatchSms" in str(info.value)


def test_the_provider_refuses_an_unknown_signature(
    sms: AliyunSms, sms_server: DysmsapiServer
) -> None:
    with pytest.raises(AliyunProviderRefused) as info:
        sms.send_batch(
            [BatchEntry(phone(1), {"name": "A", "time": "1"}, "NoSuchSign")], "SMS_NOTIFY"
        )
    assert info.value.provider_code == "isv.SMS_SIGNATURE_ILLEGAL"
    assert sms_server.sent == []


# -- SmsUpExtendCode on send_message ------------------------------------------------------------
def test_send_message_takes_an_extend_code(sms: AliyunSms, sms_server: DysmsapiServer) -> None:
    sms.send_message(
        [phone(1), phone(2)], {"name": "A", "time": "1"}, "SMS_NOTIFY", sms_up_extend_code="90999"
    )
    [sent] = sms_server.sent
    assert sent.sms_up_extend_code == "90999"
    assert sms_server.requests[-1].params["SmsUpExtendCode"] == "90999"


@pytest.mark.parametrize("code", ["9a", "12345678", "１２", " 12", 12, "-1"])
def test_send_message_refuses_a_bad_extend_code(
    sms: AliyunSms, sms_server: DysmsapiServer, code: Any
) -> None:
    with pytest.raises(AliyunInvalidArguments, match="SmsUpExtendCode"):
        sms.send_message(
            [phone(1)], {"name": "A", "time": "1"}, "SMS_NOTIFY", sms_up_extend_code=code
        )
    assert sms_server.requests == []


# -- the loopback server's SendBatchSms checks ---------------------------------------------------
def batch_params(**overrides: str) -> dict[str, str]:
    return {
        "PhoneNumberJson": '["13800130001","13800130002"]',
        "SignNameJson": '["TestSign","TestSign"]',
        "TemplateCode": "SMS_NOTIFY",
        "TemplateParamJson": '[{"name":"A","time":"1"},{"name":"B","time":"2"}]',
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({}, "OK"),
        ({"SignNameJson": '["TestSign"]'}, "isv.INVALID_PARAMETERS"),
        ({"TemplateParamJson": '[{"name":"A","time":"1"}]'}, "isv.INVALID_PARAMETERS"),
        ({"SmsUpExtendCodeJson": '["1"]'}, "isv.INVALID_PARAMETERS"),
        ({"SmsUpExtendCodeJson": '["1","x"]'}, "isv.INVALID_PARAMETERS"),
        ({"PhoneNumberJson": "13800130001"}, "isv.INVALID_JSON_PARAM"),
        (
            {"TemplateParamJson": '[{"name":1,"time":"1"},{"name":"B","time":"2"}]'},
            "isv.INVALID_JSON_PARAM",
        ),
        (
            {"TemplateParamJson": '[{"name":"A"},{"name":"B","time":"2"}]'},
            "isv.TEMPLATE_MISSING_PARAMETERS",
        ),
        ({"SignNameJson": '["TestSign","Nope"]'}, "isv.SMS_SIGNATURE_ILLEGAL"),
        (
            {
                "PhoneNumberJson": json.dumps([phone(i) for i in range(101)]),
                "SignNameJson": json.dumps(["TestSign"] * 101),
                "TemplateParamJson": json.dumps([{"name": "A", "time": "1"}] * 101),
            },
            "isv.MOBILE_COUNT_OVER_LIMIT",
        ),
        ({"PhoneNumberJson": '["13800130001","85251234567"]'}, "isv.SMS_TEMPLATE_ILLEGAL"),
    ],
)
def test_server_checks_send_batch_sms(
    sms: AliyunSms, sms_server: DysmsapiServer, overrides: dict[str, str], code: str
) -> None:
    assert sms.call("SendBatchSms", batch_params(**overrides))["Code"] == code
    assert len(sms_server.sent) == (2 if code == "OK" else 0)


# -- flask smscode notify --file people.csv -----------------------------------------------------
@pytest.fixture
def notify_app(aliyun_config: dict[str, Any]) -> Flask:
    app = Flask("batch_notify_app")
    app.config.update(SECRET_KEY="test-secret-key", TESTING=True, **aliyun_config)
    return app


def run(app: Flask, *args: str) -> Result:
    return app.test_cli_runner().invoke(smscode, list(args), env=ENGLISH)


def test_notify_file_fills_the_template_per_row(
    notify_app: Flask, sms_server: DysmsapiServer, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(
        "手机号,name,time,sign_name\n"
        "13800130001,张三,明天 9:00,阿里云短信测试\n"
        "13800130002,李四,周五 14:30,\n"
        "12345,王五,10:00,\n"  # bad number: reported, not sent
        "13800130004,,11:00,\n"  # empty variable: reported, not sent
        "13800130001,张三,明天 9:00,阿里云短信测试\n".encode("utf-8-sig")  # exact duplicate
    )
    result = run(notify_app, "notify", "--template", "SMS_NOTIFY", "--file", str(path))
    assert result.exit_code == 1, result.output  # bad rows: scripts notice
    assert [m.phones[0] for m in sms_server.sent] == ["13800130001", "13800130002"]
    first, second = sms_server.sent
    assert first.content == "【阿里云短信测试】张三，您预约的时间为明天 9:00。"
    assert second.content == "【TestSign】李四，您预约的时间为周五 14:30。"
    output = result.output
    assert "Sent: 2 number(s) in 1 request(s)" in output
    assert "Duplicates skipped: 1" in output
    assert "Rows not sent: 2" in output
    assert "line 4: not a valid mobile number" in output and "***45" in output
    assert "line 5: empty value in column(s) name" in output
    assert "张三" not in output and "李四" not in output and "13800130001" not in output


def test_notify_file_of_250_people_is_chunked(
    notify_app: Flask, sms_server: DysmsapiServer, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "phone,name,time,sms_up_extend_code\n"
        + "".join(f"{phone(i)},客户{i},{i % 24}:00,{i % 7 + 1}\n" for i in range(250)),
        encoding="utf-8",
    )
    result = run(notify_app, "notify", "--template", "SMS_NOTIFY", "--file", str(path))
    assert result.exit_code == 0, result.output
    assert "Sent: 250 number(s) in 3 request(s)" in result.output
    assert len(batch_calls(sms_server)) == 3
    assert sms_server.last_sms(phone(249)).sms_up_extend_code == str(249 % 7 + 1)
    assert sms_server.last_code(phone(7), "name") == "客户7"


def test_notify_file_refusals(
    notify_app: Flask, sms_server: DysmsapiServer, tmp_path: Path
) -> None:
    no_header = tmp_path / "list.csv"
    no_header.write_text("13800130001,张三\n", encoding="utf-8")
    result = run(notify_app, "notify", "--template", "SMS_NOTIFY", "--file", str(no_header))
    assert result.exit_code == 2 and "needs a header row with a phone column" in result.output
    result = run(notify_app, "notify", "--template", "SMS_NOTIFY", "--phones", phone(1))
    assert result.exit_code == 2 and "--params is required with --phones" in result.output
    bad = tmp_path / "bad.csv"
    bad.write_text("phone,name,time\n12345,A,1\n", encoding="utf-8")
    result = run(notify_app, "notify", "--template", "SMS_NOTIFY", "--file", str(bad))
    assert result.exit_code == 1 and "No valid mobile numbers in bad.csv" in result.output
    assert "Traceback" not in result.output
    assert sms_server.requests == []


def test_notify_params_mode_still_works_with_an_extend_code(
    notify_app: Flask, sms_server: DysmsapiServer, tmp_path: Path
) -> None:
    result = run(
        notify_app,
        "notify",
        "--template",
        "SMS_NOTIFY",
        "--params",
        '{"name":"A","time":"1"}',
        "--phones",
        f"{phone(1)},{phone(2)}",
        "--sms-up-extend-code",
        "55",
    )
    assert result.exit_code == 0, result.output
    assert sms_server.sent[-1].sms_up_extend_code == "55"
    result = run(
        notify_app,
        "notify",
        "--template",
        "SMS_NOTIFY",
        "--params",
        '{"name":"A","time":"1"}',
        "--phones",
        phone(1),
        "--sms-up-extend-code",
        "x1",
    )
    assert result.exit_code == 1 and "SmsUpExtendCode" in result.output


def test_notify_file_speaks_chinese(
    notify_app: Flask, sms_server: DysmsapiServer, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text("phone,name,time\n13800130001,张三,9:00\n12345,李四,10:00\n", encoding="utf-8")
    result = notify_app.test_cli_runner().invoke(
        smscode, ["--lang", "zh", "notify", "--template", "SMS_NOTIFY", "--file", str(path)]
    )
    assert result.exit_code == 1
    assert "已发送：1 个号码，共 1 次请求" in result.output
    assert "未发送的行：1 行" in result.output and "第 3 行" in result.output
