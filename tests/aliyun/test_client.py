"""AliyunSms, the plain client, against the loopback Dysmsapi server (real SDK)."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from flask_smscode import AliyunSms, AliyunSmsError
from flask_smscode.aliyun.receipts import CHINA_TZ, DeliveryStatus
from flask_smscode.aliyun.sendsms import MAX_PHONES_PER_CALL
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.servers.redis_server import free_port

NOTIFY = {"name": "张三", "time": "22:00"}


@pytest.fixture
def sms(sms_server) -> AliyunSms:
    return AliyunSms(
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        "TestSign",
        endpoint=sms_server.endpoint,
        protocol="http",
        timeout=2,
    )


def today_in_china() -> date:
    return datetime.now(CHINA_TZ).date()


def mobiles(count: int, start: int = 0) -> list[str]:
    """Distinct valid mainland mobile numbers."""
    return [f"1380013{i:04d}" for i in range(start, start + count)]


def test_one_message(sms, sms_server):
    [answer] = sms.send_message(["13800138000"], NOTIFY, "SMS_NOTIFY")
    assert answer.ok and answer.code == "OK" and answer.message == "OK"
    assert answer.biz_id and answer.request_id and answer.out_id
    assert answer.as_dict().keys() >= {"Code", "Message", "BizId", "RequestId"}
    [sent] = sms_server.sent
    assert sent.template_param == NOTIFY and sent.out_id == answer.out_id
    assert sms_server.requests[0].signature_ok


def test_2500_numbers_become_three_calls_with_every_number_once(sms, sms_server):
    numbers = mobiles(2500)
    # duplicates in other spellings must not be sent twice
    noisy = [*numbers, "+86 138 0013 0000", "008613800131234", numbers[-1]]
    seen_batches = []
    answers = sms.send_message(noisy, NOTIFY, "SMS_NOTIFY", on_batch=seen_batches.append)
    assert len(answers) == 3 and all(a.ok for a in answers)
    assert sorted(len(a.phone_numbers) for a in answers) == [500, 1000, 1000]
    assert len(seen_batches) == 3
    calls = [r for r in sms_server.requests if r.action == "SendSms"]
    assert len(calls) == 3
    assert all(len(c.params["PhoneNumbers"].split(",")) <= MAX_PHONES_PER_CALL for c in calls)
    recorded = [p for sent in sms_server.sent for p in sent.phone_numbers]
    assert sorted(recorded) == sorted(numbers)  # every number exactly once
    assert len({a.biz_id for a in answers}) == 3


def test_parameter_values_are_sent_as_strings(sms, sms_server):
    sms.send_message("13800138000", {"name": 42, "time": 22.5}, "SMS_NOTIFY")
    assert sms_server.sent[0].template_param == {"name": "42", "time": "22.5"}


def test_camel_case_alias(sms, sms_server):
    answers = sms.sendMessage(
        phoneList=["13800138000", "13900139000"], params=NOTIFY, verifyTemplateCode="SMS_NOTIFY"
    )
    assert [a.code for a in answers] == ["OK"]
    assert sms_server.sent[0].phone_numbers == ["13800138000", "13900139000"]


@pytest.mark.parametrize(
    "call",
    [
        lambda sms: sms.send_message([], NOTIFY, "SMS_NOTIFY"),
        lambda sms: sms.send_message(["", "  "], NOTIFY, "SMS_NOTIFY"),
        lambda sms: sms.send_message(["13800138000"], NOTIFY, ""),
        lambda sms: sms.send_message(["13800138000"], None, "SMS_NOTIFY"),
        lambda sms: sms.send_message(["13800138000", "12345"], NOTIFY, "SMS_NOTIFY"),
        lambda sms: AliyunSms(ACCESS_KEY_ID, ACCESS_KEY_SECRET).send_message(
            ["13800138000"], NOTIFY, "SMS_NOTIFY"
        ),
        lambda sms: sms.sendMessage(params=NOTIFY, verifyTemplateCode="SMS_NOTIFY"),
        lambda sms: sms.query_send_details("13800138000", page_size=51),
        lambda sms: sms.query_send_details("13800138000", send_date="21/11/2026"),
        lambda sms: sms.query_send_details("not a phone"),
    ],
)
def test_46001_missing_or_bad_parameter(sms, sms_server, call):
    with pytest.raises(AliyunSmsError) as info:
        call(sms)
    assert info.value.code == 46001
    assert sms_server.requests == []  # nothing was sent


def test_invalid_numbers_can_be_skipped(sms, sms_server):
    with pytest.raises(AliyunSmsError, match="not valid") as info:
        sms.send_message(["13800138000", "12345", "+44 7911 123456"], NOTIFY, "SMS_NOTIFY")
    assert info.value.code == 46001 and "12345" not in str(info.value)
    valid, invalid = sms.normalize_phones(["13800138000", "12345", "+44 7911 123456"])
    assert valid == ["+8613800138000"] and invalid == ["12345", "+44 7911 123456"]
    answers = sms.send_message(["13800138000", "12345"], NOTIFY, "SMS_NOTIFY", skip_invalid=True)
    assert [a.phone_numbers for a in answers] == [("13800138000",)]


def test_46002_provider_error(sms, sms_server):
    sms_server.fail_next("isv.AMOUNT_NOT_ENOUGH")
    with pytest.raises(AliyunSmsError) as info:
        sms.send_message(["13800138000"], NOTIFY, "SMS_NOTIFY")
    error = info.value
    assert error.code == 46002 and error.provider_code == "isv.AMOUNT_NOT_ENOUGH"
    assert error.request_id and error.responses[0].request_id == error.request_id
    assert "46002" in str(error) and "isv.AMOUNT_NOT_ENOUGH" in str(error)


def test_46003_request_failed(sms_server):
    gone = AliyunSms(
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        "TestSign",
        endpoint=f"127.0.0.1:{free_port()}",
        protocol="http",
        timeout=1,
    )
    with pytest.raises(AliyunSmsError) as info:
        gone.send_message(["13800138000"], NOTIFY, "SMS_NOTIFY")
    assert info.value.code == 46003 and info.value.delivery_unknown is False


def test_timeout_is_46003_and_may_have_been_delivered(sms_server):
    slow = AliyunSms(
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        "TestSign",
        endpoint=sms_server.endpoint,
        protocol="http",
        timeout=0.3,
    )
    sms_server.stall_next(1.0)
    with pytest.raises(AliyunSmsError) as info:
        slow.send_message(["13800138000"], NOTIFY, "SMS_NOTIFY", out_id="order-42")
    assert info.value.code == 46003 and info.value.delivery_unknown is True
    assert len([r for r in sms_server.requests if r.action == "SendSms"]) == 1  # no retry
    # The OutId lets an operator check what happened.
    assert sms_server.sent[0].out_id == "order-42"


def test_one_failed_batch_keeps_every_answer(sms, sms_server):
    sms_server.fail_next("isv.BUSINESS_LIMIT_CONTROL")
    with pytest.raises(AliyunSmsError) as info:
        sms.send_message(mobiles(2100), NOTIFY, "SMS_NOTIFY")
    error = info.value
    assert error.code == 46002 and len(error.responses) == 3
    assert sorted(r.ok for r in error.responses) == [False, True, True]
    [failed] = [r for r in error.responses if not r.ok]
    assert failed.code == "isv.BUSINESS_LIMIT_CONTROL" and failed.request_id
    sent = sum(len(s.phone_numbers) for s in sms_server.sent)
    assert sent == 2100 - len(failed.phone_numbers)


def test_calls_run_concurrently_within_the_bound(sms_server):
    """max_concurrency=2: two calls are in flight together, and a third waits for one of
    them (observed through the server, which records each SMS on arrival; no timing bound)."""
    import threading
    import time

    sms = AliyunSms(
        ACCESS_KEY_ID,
        ACCESS_KEY_SECRET,
        "TestSign",
        endpoint=sms_server.endpoint,
        protocol="http",
        timeout=5,
        max_concurrency=2,
    )
    sms_server.stall_next(1.0, times=4)
    answers: list = []
    worker = threading.Thread(
        target=lambda: answers.extend(sms.send_message(mobiles(3500), NOTIFY, "SMS_NOTIFY"))
    )
    worker.start()
    deadline = time.monotonic() + 5
    while len(sms_server.sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(sms_server.sent) == 2  # two calls in flight at once, not one after the other
    time.sleep(0.5)
    assert len(sms_server.sent) == 2  # the third waits while both are stalled
    worker.join(10)
    assert len(answers) == 4 and all(a.ok for a in answers)
    assert len(sms_server.sent) == 4


def test_caller_out_id_on_every_call(sms, sms_server):
    answers = sms.send_message(mobiles(1500), NOTIFY, "SMS_NOTIFY", out_id="campaign-7")
    assert {a.out_id for a in answers} == {"campaign-7"}
    assert {s.out_id for s in sms_server.sent} == {"campaign-7"}


def test_delivery_receipt_of_a_sent_message(sms, sms_server):
    [answer] = sms.send_message(["13800138000"], NOTIFY, "SMS_NOTIFY", out_id="o-1")
    report = sms.query_send_details("+86 138 0013 8000", biz_id=answer.biz_id)
    assert report.total_count == 1 and len(report) == 1
    [record] = report
    assert record.status is DeliveryStatus.DELIVERED and record.delivered
    assert record.error_code == "DELIVERED" and record.template_code == "SMS_NOTIFY"
    assert record.out_id == "o-1" and record.phone == "13800138000"
    assert record.send_time.tzinfo is not None and record.receive_time >= record.send_time
    assert "张三" not in repr(record)  # content stays out of repr
    assert record.as_dict()["status"] == "delivered"
    [query] = [r for r in sms_server.requests if r.action == "QuerySendDetails"]
    assert query.params["SendDate"] == datetime.now(CHINA_TZ).strftime("%Y%m%d")


def test_failed_and_waiting_receipts(sms, sms_server):
    sms.send_message(["13800138000"], NOTIFY, "SMS_NOTIFY")
    [first] = sms_server.sent
    sms_server.set_delivery_status(first.biz_id, 2, "MOBILE_NOT_ON_SERVICE")
    sms.send_message(["13800138000"], NOTIFY, "SMS_NOTIFY")
    sms_server.set_delivery_status(sms_server.sent[-1].biz_id, 1)
    report = sms.query_send_details(
        "13800138000", send_date=today_in_china().isoformat(), page_size=50
    )
    statuses = sorted((r.status, r.error_code) for r in report)
    assert statuses == [
        (DeliveryStatus.WAITING, ""),
        (DeliveryStatus.FAILED, "MOBILE_NOT_ON_SERVICE"),
    ]
    waiting = next(r for r in report if r.status is DeliveryStatus.WAITING)
    assert waiting.receive_time is None


def test_receipt_paging(sms, sms_server):
    for _ in range(3):
        sms.send_message(["13800138000"], NOTIFY, "SMS_NOTIFY")
    page = sms.query_send_details("13800138000", page_size=2, page=2)
    assert page.total_count == 3 and len(page) == 1


def test_from_json_and_element(tmp_path, sms_server):
    (tmp_path / "sms.json").write_text(
        json.dumps(
            {
                "accessKey": ACCESS_KEY_ID,
                "accessSecret": ACCESS_KEY_SECRET,
                "verifySign": "TestSign",
            }
        ),
        encoding="utf-8",
    )
    sms = AliyunSms.from_json(tmp_path / "sms.json", endpoint=sms_server.endpoint, protocol="http")
    assert sms.sign_name == "TestSign"
    assert sms.send_message("13800138000", NOTIFY, "SMS_NOTIFY")[0].ok

    element = tmp_path / "element"
    (element / "backend").mkdir(parents=True)
    (element / "backend" / "sms.json").write_text((tmp_path / "sms.json").read_text())
    (element / "e.json").write_text(
        json.dumps({"title": "短信", "type": "SMS.Aliyun", "backendBundleEntry": "backend"})
    )
    from_element = AliyunSms.from_element(element, endpoint=sms_server.endpoint, protocol="http")
    assert from_element.send_message("13800138000", NOTIFY, "SMS_NOTIFY")[0].ok
    assert ACCESS_KEY_SECRET not in repr(from_element)


@pytest.mark.parametrize(
    "files, message",
    [
        ({"sms.json": {"accessKey": "k", "accessSecret": "s"}}, "verifySign"),
        ({"sms.json": ["not", "an", "object"]}, "JSON object"),
        ({}, "does not exist"),
        (
            {
                "e.json": {"type": "SMS.Tencent", "backendBundleEntry": "."},
                "sms.json": {"accessKey": "k", "accessSecret": "s", "verifySign": "v"},
            },
            "SMS.Aliyun",
        ),
    ],
)
def test_bad_config_files_are_46001(tmp_path, files, message):
    for name, content in files.items():
        (tmp_path / name).write_text(json.dumps(content))
    loader = AliyunSms.from_element if "e.json" in files else AliyunSms.from_json
    target = tmp_path if "e.json" in files else tmp_path / "sms.json"
    with pytest.raises(AliyunSmsError, match=message) as info:
        loader(target)
    assert info.value.code == 46001


def test_blueprint_sender_uses_this_client(app, aliyun_config, sms_server):
    """The code sender is an AliyunSms built from the app's SMSCODE_ALIYUN_* settings, and
    a code sent through the blueprint is a SendSms call of that client (its key and sign)."""
    from flask_smscode import get_service

    client = get_service(app).sender.client
    assert isinstance(client, AliyunSms)
    assert client.endpoint == aliyun_config["SMSCODE_ALIYUN_ENDPOINT"]
    assert client.sign_name == aliyun_config["SMSCODE_ALIYUN_SIGN_NAME"]
    assert app.test_client().post("/sms/send", json={"phone": "13800138000"}).status_code == 200
    [request] = [r for r in sms_server.requests if r.action == "SendSms"]
    assert request.signature_ok
    assert request.access_key_id == aliyun_config["SMSCODE_ALIYUN_ACCESS_KEY_ID"]
    assert request.params["SignName"] == aliyun_config["SMSCODE_ALIYUN_SIGN_NAME"]


def test_from_config_reads_the_smscode_keys(aliyun_config):
    sms = AliyunSms.from_config({**aliyun_config, "SMSCODE_ALLOWED_REGIONS": ["*"]})
    assert sms.endpoint == aliyun_config["SMSCODE_ALIYUN_ENDPOINT"] and sms.protocol == "http"
    assert sms.allowed_regions is None
