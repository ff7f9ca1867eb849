"""Tencent's status callbacks (回执) at POST /sms/reports/tencent/<secret>: parsed by
tencent/reports.py, stored in the same provider-blind delivery records as Alibaba's, and
answered in Tencent's format. Alibaba's receiver keeps its URL and answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_smscode import delivery_status
from flask_smscode.senders.reports import MalformedReports, report_channels
from flask_smscode.tencent.reports import parse_reports, report_phones
from tests.helpers import E164, PHONE, send
from tests.servers.live_server import live_server

SECRET = "t3nc3nt-R3port_" + "x" * 30
OK = {"result": 0, "errmsg": "OK"}


@pytest.fixture
def report_app(make_tencent_app: Callable[..., Flask]) -> Flask:
    return make_tencent_app(SMSCODE_TENCENT_REPORT_SECRET=SECRET, SMSCODE_RESEND_INTERVAL_SECONDS=0)


def url(secret: str = SECRET) -> str:
    return f"/sms/reports/tencent/{secret}"


def delivery(app: Flask, phone: str = PHONE) -> dict[str, Any]:
    with app.app_context():
        return delivery_status(phone).as_json()


def test_a_pushed_report_updates_the_delivery_record(report_app, tencent_server):
    client = report_app.test_client()
    assert send(client).status_code == 200
    sms = tencent_server.last_sms(PHONE)
    assert delivery(report_app)["state"] == "waiting"
    with live_server(report_app) as base:
        answer = tencent_server.push_reports(base + url(), [tencent_server.report(sms)])
    assert answer == (200, OK) and tencent_server.push_accepted(*answer)
    assert delivery(report_app) == {
        "state": "delivered",
        "err_code": "DELIVRD",
        "out_id": sms.session_context,
    }


def test_a_failed_report(report_app, tencent_server):
    client = report_app.test_client()
    send(client)
    sms = tencent_server.last_sms(PHONE)
    report = tencent_server.report(sms, success=False, errmsg="MK:0001")
    response = client.post(url(), json=[report])
    assert response.status_code == 200 and response.get_json() == OK
    assert delivery(report_app)["state"] == "failed"
    assert delivery(report_app)["err_code"] == "MK:0001"


def test_a_report_without_ext_is_matched_by_its_serial_number(report_app, tencent_server):
    """``ext`` must be enabled by Tencent's support: without it the sid (SerialNo, kept as
    the send's BizId while reports are on) and the phone find the send."""
    client = report_app.test_client()
    send(client)
    sms = tencent_server.last_sms(PHONE)
    response = client.post(url(), json=[tencent_server.report(sms, with_ext=False)])
    assert response.get_json() == OK
    assert delivery(report_app)["state"] == "delivered"


def test_a_duplicate_report_changes_nothing(report_app, tencent_server):
    client = report_app.test_client()
    send(client)
    sms = tencent_server.last_sms(PHONE)
    client.post(url(), json=[tencent_server.report(sms)])
    again = client.post(url(), json=[tencent_server.report(sms, success=False)])
    assert again.get_json() == OK
    assert delivery(report_app)["state"] == "delivered"


def test_a_forged_report_is_dropped(report_app, tencent_server):
    client = report_app.test_client()
    send(client)
    sms = tencent_server.last_sms(PHONE)
    forged = tencent_server.report(sms, success=False, ext="f" * 16)
    forged["sid"] = "forged"
    assert client.post(url(), json=[forged]).get_json() == OK  # 200: pushing again won't help
    assert delivery(report_app)["state"] == "waiting"


@pytest.mark.parametrize(
    "body",
    [b"not json", b"{}", b"[1]", json.dumps([{"report_status": "MAYBE"}]).encode()],
)
def test_a_malformed_body_is_400_in_tencents_format(report_app, body):
    response = report_app.test_client().post(url(), data=body, content_type="application/json")
    assert response.status_code == 400
    answer = response.get_json()
    assert answer["result"] != 0 and isinstance(answer["errmsg"], str)


def test_the_receiver_is_off_without_its_secret(tencent_app):
    assert tencent_app.test_client().post(url(), json=[]).status_code == 404


def test_a_wrong_secret_or_channel_is_404(report_app):
    client = report_app.test_client()
    assert client.post(url("y" * 40), json=[]).status_code == 404
    assert client.post(f"/sms/reports/nobody/{SECRET}", json=[]).status_code == 404
    # Alibaba's receiver is off: Tencent's secret does not open it
    assert client.post(f"/sms/reports/{SECRET}", json=[]).status_code == 404
    assert client.post(f"/sms/reports/aliyun/{SECRET}", json=[]).status_code == 404


def test_a_body_too_large_is_413(make_tencent_app):
    app = make_tencent_app(
        SMSCODE_TENCENT_REPORT_SECRET=SECRET, SMSCODE_TENCENT_REPORT_MAX_BYTES=1024
    )
    response = app.test_client().post(url(), data=b"[" + b" " * 2000 + b"]")
    assert response.status_code == 413 and response.get_json()["result"] != 0


def test_the_source_allowlist(make_tencent_app):
    app = make_tencent_app(
        SMSCODE_TENCENT_REPORT_SECRET=SECRET, SMSCODE_TENCENT_REPORT_ALLOWED_IPS=["10.0.0.0/8"]
    )
    response = app.test_client().post(url(), json=[])
    assert response.status_code == 403 and response.get_json()["result"] != 0
    allowed = app.test_client().post(url(), json=[], environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert allowed.status_code == 200 and allowed.get_json() == OK


def test_a_store_that_is_down_answers_503(report_app, tencent_server, monkeypatch):
    from flask_smscode.errors import StorageUnavailable

    client = report_app.test_client()
    send(client)
    sms = tencent_server.last_sms(PHONE)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable()

    with report_app.app_context():
        from flask_smscode import get_service

        monkeypatch.setattr(get_service().store, "record_delivery", down)
    response = client.post(url(), json=[tencent_server.report(sms)])
    assert response.status_code == 503 and response.get_json()["result"] != 0


def test_alibabas_receiver_keeps_its_answers(make_tencent_app):
    app = make_tencent_app(SMSCODE_ALIYUN_REPORT_SECRET=SECRET)
    response = app.test_client().post(f"/sms/reports/{SECRET}", json=[])
    assert response.status_code == 200 and response.get_json() == {"code": 0, "msg": "接收成功"}
    bad = app.test_client().post(f"/sms/reports/{SECRET}", data=b"{}")
    assert bad.status_code == 400 and bad.get_json()["code"] == 1


# -- parsing ----------------------------------------------------------------------------------


def test_parse_reports_fields():
    body = json.dumps(
        [
            {
                "user_receive_time": "2026-12-05 10:00:00",
                "nationcode": "86",
                "mobile": "13800138000",
                "report_status": "SUCCESS",
                "errmsg": "DELIVRD",
                "description": "用户短信送达成功",
                "sid": "2019:123",
                "ext": "0123456789abcdef",
            }
        ]
    ).encode()
    [report] = parse_reports(body)
    assert report.phones == (E164,) and report.out_id == "0123456789abcdef"
    assert report.biz_id == "2019:123" and report.success and report.err_code == "DELIVRD"


def test_report_phones():
    assert report_phones("852", "61234567") == ("+85261234567",)
    assert report_phones("", "13800138000") == ("+8613800138000",)
    assert report_phones("86", "not digits") == ()


def test_parse_refuses_what_is_not_a_list_of_reports():
    for body in (b"\xff", b'"x"', b"[[]]", b'[{"report_status": "SUCCESS", "mobile": []}]'):
        with pytest.raises(MalformedReports):
            parse_reports(body)


def test_both_channels_are_registered():
    channels = report_channels()
    assert {"aliyun", "tencent"} <= set(channels)
    assert channels["tencent"].setting_prefix == "SMSCODE_TENCENT_REPORT"


def test_a_report_gives_the_delivery_time_from_the_receive_time_and_the_outid(
    report_app, tencent_server
):
    """Tencent reports only the receive time (Beijing time): the core measures from the
    send time the OutId carries, into smscode_delivery_seconds{vendor="tencent"}."""
    from flask_smscode.metrics import DELIVERY
    from flask_smscode.phones import carrier_label

    DELIVERY.reset()
    client = report_app.test_client()
    assert send(client).status_code == 200
    sms = tencent_server.last_sms(PHONE)
    response = client.post(url(), json=[tencent_server.report(sms, received_after=7)])
    assert response.status_code == 200 and response.get_json() == OK
    labels = ("tencent", carrier_label(E164), "delivered")
    assert sum(DELIVERY.buckets[labels]) == 1
    assert 6 <= DELIVERY.sums[labels] <= 9  # the OutId is minted just before the send
    DELIVERY.reset()
