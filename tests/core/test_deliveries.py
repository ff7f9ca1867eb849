"""Delivery reports pushed by Alibaba Cloud (SmsReport, HTTP batch push), end to end.

Codes go out through the real SDK to the loopback Dysmsapi server; that server then pushes
reports for what it "sent" over real HTTP to the app served by a live werkzeug server, on
memory:// and on Redis. What Alibaba would do with each answer is judged as Alibaba does:
only HTTP 200 with a numeric ``code`` stops its retries.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from flask_smscode import delivery_status
from flask_smscode.aliyun.reports import report_phones
from flask_smscode.cli import smscode
from flask_smscode.core.outids import OutIds
from flask_smscode.errors import ConfigurationError
from flask_smscode.metrics import REPORTS, SmsCodeCollector, report_err_label
from flask_smscode.signals import delivery_reported
from tests.helpers import E164, PHONE
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.live_server import live_server
from tests.servers.redis_server import RedisServer

SECRET = "r3p0rt-S3cret_" + "x" * 30
OTHER_PHONE = "13900139000"
ENGLISH = {"LANGUAGE": "", "LC_ALL": "C.UTF-8"}


@pytest.fixture(autouse=True)
def _fresh_counts() -> Iterator[None]:
    REPORTS.reset()
    yield
    REPORTS.reset()


@pytest.fixture
def report_app(make_app: Callable[..., Flask]) -> Callable[..., Flask]:
    def factory(**config: Any) -> Flask:
        config.setdefault("SMSCODE_ALIYUN_REPORT_SECRET", SECRET)
        config.setdefault("SMSCODE_RESEND_INTERVAL_SECONDS", 0)
        return make_app(**config)

    return factory


@pytest.fixture
def served(report_app: Callable[..., Flask]) -> Iterator[tuple[Flask, str]]:
    app = report_app()
    with live_server(app) as url:
        yield app, url


def post(url: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def send(base: str, sms_server: DysmsapiServer, phone: str = PHONE) -> Any:
    status, body = post(f"{base}/sms/send", {"phone": phone})
    assert status == 200, body
    time.sleep(0.02)  # OutIds order sends by centisecond
    return sms_server.last_sms(phone)


def delivery(app: Flask, phone: str = PHONE) -> dict[str, Any]:
    with app.app_context():
        return delivery_status(phone).as_json()


def counts() -> dict[tuple[str, str], int]:
    return REPORTS.snapshot()


def receiver(base: str, secret: str = SECRET) -> str:
    return f"{base}/sms/reports/{secret}"


def accepted(sms_server: DysmsapiServer, answer: tuple[int, Any]) -> bool:
    return sms_server.push_accepted(*answer)


# -- the whole loop ----------------------------------------------------------------------


def test_delivered(served, sms_server):
    app, base = served
    seen: list[dict[str, Any]] = []

    def listener(sender: Flask, **kwargs: Any) -> None:
        seen.append({"app": sender, **kwargs})

    sms = send(base, sms_server)
    assert len(sms.out_id) == 16
    assert delivery(app) == {"state": "waiting", "err_code": None, "out_id": sms.out_id}
    with delivery_reported.connected_to(listener):
        answer = sms_server.push_reports(receiver(base), [sms_server.delivery_report(sms)])
    assert answer == (200, {"code": 0, "msg": "接收成功"})
    assert accepted(sms_server, answer)
    assert delivery(app) == {"state": "delivered", "err_code": "DELIVERED", "out_id": sms.out_id}
    assert seen == [
        {
            "app": app,
            "phone": E164,
            "state": "delivered",
            "err_code": "DELIVERED",
            "out_id": sms.out_id,
        }
    ]
    assert counts() == {("delivered", "DELIVERED"): 1}


def test_failed_with_err_code(served, sms_server):
    app, base = served
    sms = send(base, sms_server)
    report = sms_server.delivery_report(sms, success=False, err_code="MK:0001", err_msg="空号")
    assert accepted(sms_server, sms_server.push_reports(receiver(base), [report]))
    assert delivery(app) == {"state": "failed", "err_code": "MK:0001", "out_id": sms.out_id}
    assert counts() == {("failed", "MK:0001"): 1}


def test_duplicate_counted_once(served, sms_server):
    app, base = served
    sms = send(base, sms_server)
    seen: list[str] = []
    report = sms_server.delivery_report(sms)
    with delivery_reported.connected_to(lambda sender, **kw: seen.append(kw["state"])):
        # twice in one push, then the whole push again (Alibaba's retry after a timeout)
        assert accepted(sms_server, sms_server.push_reports(receiver(base), [report, report]))
        assert accepted(sms_server, sms_server.push_reports(receiver(base), [report]))
        # a conflicting duplicate does not flip the state: the first report wins
        flipped = sms_server.delivery_report(sms, success=False, err_code="MK:0001")
        assert accepted(sms_server, sms_server.push_reports(receiver(base), [flipped]))
    assert seen == ["delivered"]
    assert delivery(app)["state"] == "delivered"
    assert counts() == {
        ("delivered", "DELIVERED"): 1,
        ("duplicate", "DELIVERED"): 2,
        ("duplicate", "MK:0001"): 1,
    }


def test_late_report_does_not_overwrite_a_newer_send(served, sms_server):
    app, base = served
    older = send(base, sms_server)
    newer = send(base, sms_server)
    assert older.out_id != newer.out_id
    push = sms_server.push_reports
    assert accepted(sms_server, push(receiver(base), [sms_server.delivery_report(newer)]))
    late = sms_server.delivery_report(older, success=False, err_code="UNDELIV")
    assert accepted(sms_server, push(receiver(base), [late]))  # answered 200: no retry
    assert delivery(app) == {"state": "delivered", "err_code": "DELIVERED", "out_id": newer.out_id}
    assert counts() == {("delivered", "DELIVERED"): 1, ("late", "UNDELIV"): 1}


def test_older_report_first_then_newer_send_waits(served, sms_server):
    app, base = served
    older = send(base, sms_server)
    assert accepted(
        sms_server,
        sms_server.push_reports(
            receiver(base), [sms_server.delivery_report(older, success=False, err_code="IC:0015")]
        ),
    )
    newer = send(base, sms_server)
    # the live code is the newer one: its report has not come
    assert delivery(app) == {"state": "waiting", "err_code": None, "out_id": newer.out_id}
    assert accepted(
        sms_server, sms_server.push_reports(receiver(base), [sms_server.delivery_report(newer)])
    )
    assert delivery(app)["state"] == "delivered"


def test_report_after_the_code_was_verified(served, sms_server):
    app, base = served
    sms = send(base, sms_server)
    status, _ = post(f"{base}/sms/verify", {"phone": PHONE, "code": sms.code})
    assert status == 200
    # The code is used up, but its SMS is still on record as sent, waiting for its report.
    assert delivery(app) == {"state": "waiting", "err_code": None, "out_id": sms.out_id}
    assert accepted(
        sms_server, sms_server.push_reports(receiver(base), [sms_server.delivery_report(sms)])
    )
    assert delivery(app) == {"state": "delivered", "err_code": "DELIVERED", "out_id": sms.out_id}


def test_unknown_sends_are_counted_and_dropped(served, sms_server):
    app, base = served
    sms = send(base, sms_server)
    forged = sms.out_id[:-1] + ("0" if sms.out_id[-1] != "0" else "1")
    reports = [
        # tag does not match, and neither does the BizId
        {**sms_server.delivery_report(sms, out_id=forged), "biz_id": "900000000000000000^0"},
        sms_server.delivery_report(sms, phone=OTHER_PHONE),  # another phone's report
        {**sms_server.delivery_report(sms, out_id="campaign-7"), "biz_id": "1^0"},  # notice
        {**sms_server.delivery_report(sms, out_id=""), "biz_id": ""},  # no OutId, no BizId
        {"success": True, "err_code": "<script>", "phone_number": "x" * 500},
    ]
    answer = sms_server.push_reports(receiver(base), reports)
    assert answer == (200, {"code": 0, "msg": "接收成功"})
    assert delivery(app)["state"] == "waiting"
    assert delivery(app, OTHER_PHONE)["state"] == "none"
    assert counts() == {("unknown", "DELIVERED"): 4, ("unknown", "other"): 1}


def test_a_report_without_our_out_id_is_matched_by_biz_id_and_phone(served, sms_server):
    """The send was recorded as waiting with its BizId; a report carrying no OutId (or
    another one) but that BizId and phone is this send's."""
    app, base = served
    sms = send(base, sms_server)
    assert sms.biz_id
    report = {**sms_server.delivery_report(sms, success=False, err_code="MK:0001"), "out_id": ""}
    assert accepted(sms_server, sms_server.push_reports(receiver(base), [report]))
    assert delivery(app) == {"state": "failed", "err_code": "MK:0001", "out_id": sms.out_id}
    assert counts() == {("failed", "MK:0001"): 1}
    # Pushed again (Alibaba retries): answered 200 and changes nothing. Once its report is
    # stored the BizId is no longer kept (the field stays under 64 bytes), so without an
    # OutId the repeat is counted as unknown rather than as a duplicate.
    assert accepted(sms_server, sms_server.push_reports(receiver(base), [report]))
    assert delivery(app) == {"state": "failed", "err_code": "MK:0001", "out_id": sms.out_id}
    assert counts() == {("failed", "MK:0001"): 1, ("unknown", "MK:0001"): 1}


def test_cli_status_shows_the_delivery(served, sms_server):
    app, base = served
    sms = send(base, sms_server)
    runner = app.test_cli_runner()
    result = runner.invoke(smscode, ["status", PHONE], env=ENGLISH)
    assert result.exit_code == 0, result.output
    assert f"Delivery: waiting for Alibaba Cloud's report (OutId {sms.out_id})" in result.output
    sms_server.push_reports(
        receiver(base), [sms_server.delivery_report(sms, success=False, err_code="MK:0001")]
    )
    result = runner.invoke(smscode, ["status", PHONE], env=ENGLISH)
    assert f"Delivery: failed, MK:0001 (OutId {sms.out_id})" in result.output
    data = json.loads(runner.invoke(smscode, ["status", PHONE, "--json"], env=ENGLISH).output)
    assert data["delivery"] == {"state": "failed", "err_code": "MK:0001", "out_id": sms.out_id}
    chinese = runner.invoke(smscode, ["status", PHONE], env={"LANGUAGE": "zh_CN"})
    assert "送达状态：失败，MK:0001" in chinese.output


def test_cli_status_without_reports_is_unchanged(make_app, sms_server):
    app = make_app()
    data = json.loads(
        app.test_cli_runner().invoke(smscode, ["status", PHONE, "--json"], env=ENGLISH).output
    )
    assert "delivery" not in data


def test_prometheus_counter(served, sms_server):
    prometheus_client = pytest.importorskip("prometheus_client")
    _, base = served
    sms = send(base, sms_server)
    sms_server.push_reports(
        receiver(base), [sms_server.delivery_report(sms, success=False, err_code="MK:0001")]
    )
    registry = prometheus_client.CollectorRegistry()
    registry.register(SmsCodeCollector())
    assert (
        registry.get_sample_value(
            "smscode_delivery_reports_total", {"outcome": "failed", "err_code": "MK:0001"}
        )
        == 1
    )


# -- protection of the receiver ---------------------------------------------------------


def test_wrong_secret_is_a_plain_404(report_app, make_app, sms_server):
    app = report_app()
    off = make_app()  # no SMSCODE_ALIYUN_REPORT_SECRET: the receiver is off
    with live_server(app) as base, live_server(off) as off_base:
        sms = send(base, sms_server)
        report = [sms_server.delivery_report(sms)]
        wrong = sms_server.push_reports(receiver(base, SECRET[:-1] + "y"), report)
        short = sms_server.push_reports(receiver(base, "x"), report)
        disabled = sms_server.push_reports(receiver(off_base), report)
    assert wrong[0] == short[0] == disabled[0] == 404
    assert wrong[1] == short[1] == disabled[1]  # no hint: the same answer as "off"
    assert "secret" not in json.dumps(wrong[1]).lower()
    assert counts() == {}
    assert delivery(app)["state"] == "waiting"


def test_disallowed_source_is_403(report_app, sms_server):
    app = report_app(SMSCODE_ALIYUN_REPORT_ALLOWED_IPS=["10.0.0.0/8", "2001:db8::/32"])
    allowed = report_app(SMSCODE_ALIYUN_REPORT_ALLOWED_IPS=["127.0.0.1"])
    with live_server(app) as base, live_server(allowed) as allowed_base:
        sms = send(base, sms_server)
        status, answer = sms_server.push_reports(receiver(base), [sms_server.delivery_report(sms)])
        assert (status, answer["code"]) == (403, 1)
        assert delivery(app)["state"] == "waiting"
        other = send(allowed_base, sms_server, OTHER_PHONE)
        assert accepted(
            sms_server,
            sms_server.push_reports(receiver(allowed_base), [sms_server.delivery_report(other)]),
        )


def test_body_too_large_is_413(report_app, sms_server):
    app = report_app(SMSCODE_ALIYUN_REPORT_MAX_BYTES=2048)
    with live_server(app) as base:
        sms = send(base, sms_server)
        reports = [sms_server.delivery_report(sms)] * 20  # about 5 KB
        status, answer = sms_server.push_reports(receiver(base), reports)
        assert status == 413 and answer["code"] == 1 and isinstance(answer["msg"], str)
        assert delivery(app)["state"] == "waiting"
        assert accepted(sms_server, sms_server.push_reports(receiver(base), reports[:2]))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"\xff\xfe",
        b'{"success": true}',
        b"[1, 2]",
        b"[" * 5000,
        b'[{"phone_number": "13800138000"}]',  # no success
        b'[{"success": "true", "out_id": "x"}]',  # success not a bool
        b'[{"success": true, "out_id": {"$gt": ""}}]',  # out_id not text
    ],
)
def test_malformed_body_is_400(served, sms_server, body):
    _, base = served
    status, answer = sms_server.push_reports(receiver(base), body)
    assert status == 400
    assert answer["code"] == 1 and answer["msg"]
    assert set(answer) == {"code", "msg"}
    assert counts() == {}


def test_empty_array_is_accepted(served, sms_server):
    _, base = served
    assert sms_server.push_reports(receiver(base), []) == (200, {"code": 0, "msg": "接收成功"})


@pytest.mark.parametrize("store_uri", ["redis"], indirect=True)
@pytest.mark.redis
def test_store_down_answers_503_and_the_retry_is_stored(
    make_app, aliyun_config, sms_server, key_prefix
):
    server = RedisServer().start()
    try:
        app = make_app(
            SMSCODE_STORAGE_URI=server.url,
            SMSCODE_ALIYUN_REPORT_SECRET=SECRET,
            SMSCODE_KEY_PREFIX=key_prefix,
        )
        with live_server(app) as base:
            sms = send(base, sms_server)
            report = [sms_server.delivery_report(sms)]
            port = server.port
            server.kill()
            status, answer = sms_server.push_reports(receiver(base), report)
            assert status == 503 and answer["code"] != 0
            assert not accepted(sms_server, (status, answer))  # so Alibaba pushes again
            server = RedisServer(port=port).start()  # an empty Redis: the code is gone
            assert accepted(sms_server, sms_server.push_reports(receiver(base), report))
            assert delivery(app) == {
                "state": "delivered",
                "err_code": "DELIVERED",
                "out_id": sms.out_id,
            }
    finally:
        server.cleanup()


# -- the stored field -------------------------------------------------------------------


@pytest.mark.parametrize("store_uri", ["redis"], indirect=True)
@pytest.mark.redis
def test_one_compact_field_per_phone(served, redis_url, key_prefix, sms_server):
    """The memory cost the README quotes: one listpack field of at most 64 bytes."""
    _, base = served
    first = send(base, sms_server)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = f"{key_prefix}:{{{E164}}}"
    before = client.memory_usage(key)
    sms_server.push_reports(receiver(base), [sms_server.delivery_report(first)])
    delivered = client.memory_usage(key)
    assert delivered - before <= 64, (before, delivered)
    second = send(base, sms_server)
    sms_server.push_reports(
        receiver(base), [sms_server.delivery_report(second, success=False, err_code="X" * 40)]
    )  # the longest err_code kept
    value = client.hget(key, "d")
    assert value is not None and len(value) <= 64
    assert client.object("encoding", key) == "listpack"
    assert 86_000_000 < client.pttl(key) <= 86_400_000  # kept a day
    client.close()


def test_out_ids():
    codec = OutIds(b"k" * 32)
    out_id = codec.new(E164)
    assert len(out_id) == 16 and out_id.isascii() and out_id.isalnum() and out_id.islower()
    body = codec.report_id(E164, out_id)
    assert body == out_id[6:] and codec.out_id(E164, body) == out_id
    assert codec.report_id("+8613900139000", out_id) is None
    assert OutIds(b"other" * 8).report_id(E164, out_id) is None
    later = codec.new(E164, now=time.time() + 1)
    assert later[8:] > out_id[8:]  # the time part sorts as text
    assert report_phones("13800138000") == ("+8613800138000", "+13800138000")
    assert report_phones("85261234567") == ("+85261234567",)
    assert report_phones("1380013800a") == () and report_phones(None) == ()


def test_err_code_labels_are_bounded():
    assert report_err_label("DELIVERED") == "DELIVERED"
    assert report_err_label("MK:0001") == "MK:0001"
    for hostile in ("a" * 41, "<b>", "DELIVERED\n", "", None, 7, "成功"):
        assert report_err_label(hostile) == "other"


@pytest.mark.parametrize(
    "config",
    [
        {"SMSCODE_ALIYUN_REPORT_SECRET": "short"},
        {"SMSCODE_ALIYUN_REPORT_SECRET": "a/b" * 20},
        {"SMSCODE_ALIYUN_REPORT_SECRET": SECRET, "SMSCODE_ALIYUN_REPORT_ALLOWED_IPS": ["nope"]},
        {"SMSCODE_ALIYUN_REPORT_SECRET": SECRET, "SMSCODE_ALIYUN_REPORT_MAX_BYTES": 0},
    ],
)
def test_bad_settings_fail_at_start_up(make_app, config):
    with pytest.raises(ConfigurationError) as info:
        make_app(**config)
    assert SECRET not in str(info.value)
    assert "SMSCODE_ALIYUN_REPORT_" in str(info.value)
