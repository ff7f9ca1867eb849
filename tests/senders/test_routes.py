"""Routing per country calling code (SMSCODE_SENDER_ROUTES) and failover across vendors:
Alibaba Cloud and Tencent Cloud, each a loopback server checking its own signatures, the
real SDKs in between, every test against memory:// and a real Redis (``make_app``).

The rule under test is the one of senders/chain.py, across vendors: a send moves on only
after a failure the *failing vendor's own table* calls definite (nothing sent); an ambiguous
outcome, a refusal about the number and flow control end it where it is, and every attempt
carries the same OutId.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from flask_smscode import ConfigurationError, delivery_status, get_service
from flask_smscode.cli import smscode
from flask_smscode.metrics import FAILOVERS, SENDERS
from flask_smscode.senders.chain import FailoverSender
from flask_smscode.senders.routes import RoutingSender, calling_code
from tests.helpers import ENGLISH, PHONE, assert_error, send, verify
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.redis_server import free_port
from tests.servers.tencent_server import SDK_APP_ID, SECRET_ID, SECRET_KEY, TencentServer

HK_PHONE = "+85251234567"
US_PHONE = "+12025550123"
BACKUP_KEY_ID, BACKUP_SECRET = "routes-backup-key", "routes-backup-secret"


@pytest.fixture(scope="module")
def _tencent() -> Iterator[TencentServer]:
    with TencentServer() as server:
        yield server


@pytest.fixture
def tencent(_tencent: TencentServer) -> Iterator[TencentServer]:
    _tencent.reset()
    yield _tencent
    _tencent.reset()


@pytest.fixture(scope="module")
def _backup() -> Iterator[DysmsapiServer]:
    server = DysmsapiServer(
        {BACKUP_KEY_ID: BACKUP_SECRET},
        sign_names={"BackupSign"},
        templates={"SMS_BACKUP": ["code"], "SMS_INTL_CODE": ["code"]},
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backup(_backup: DysmsapiServer) -> Iterator[DysmsapiServer]:
    _backup.reset()
    yield _backup
    _backup.reset()


def tencent_keys(server: TencentServer) -> dict[str, Any]:
    return {
        "SMSCODE_TENCENT_SECRET_ID": SECRET_ID,
        "SMSCODE_TENCENT_SECRET_KEY": SECRET_KEY,
        "SMSCODE_TENCENT_SDK_APP_ID": SDK_APP_ID,
        "SMSCODE_TENCENT_SIGN_NAME": "TestSign",
        "SMSCODE_TENCENT_TEMPLATE_ID": "1001",
        "SMSCODE_TENCENT_INTL_TEMPLATE_ID": "2001",
        "SMSCODE_TENCENT_ENDPOINT": server.endpoint,
        "SMSCODE_TENCENT_PROTOCOL": "http",
        "SMSCODE_TENCENT_TIMEOUT_SECONDS": 1,
    }


def backup_entry(server: DysmsapiServer) -> dict[str, Any]:
    return {
        "SMSCODE_SENDER": "aliyun",
        "SMSCODE_ALIYUN_ACCESS_KEY_ID": BACKUP_KEY_ID,
        "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": BACKUP_SECRET,
        "SMSCODE_ALIYUN_SIGN_NAME": "BackupSign",
        "SMSCODE_ALIYUN_TEMPLATE_CODE": "SMS_BACKUP",
        "SMSCODE_ALIYUN_ENDPOINT": server.endpoint,
    }


@pytest.fixture
def make_routed(make_app, tencent, backup):
    """An app with both vendors configured (and a second Alibaba account, ``backup``)."""

    def factory(**config: Any):
        config = {
            **tencent_keys(tencent),
            "SMSCODE_ALIYUN_TIMEOUT_SECONDS": 1,
            "SMSCODE_SENDERS_CONFIG": {"backup": backup_entry(backup)},
            "SMSCODE_ALLOWED_REGIONS": ["CN", "HK"],
            **config,
        }
        SENDERS.reset()
        FAILOVERS.reset()
        return make_app(**config)

    return factory


def aliyun_sends(server: DysmsapiServer) -> list[Any]:
    return [r for r in server.requests if r.action == "SendSms"]


def tencent_sends(server: TencentServer) -> list[Any]:
    return server.action_requests("SendSms")


def carrier(app, phone: str = PHONE) -> str | None:
    with app.app_context():
        return get_service().status(phone).sender


def send_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "event=send " in r.getMessage() + " "]


def failover_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "event=send.failover" in r.getMessage()]


# -- the building blocks ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "code"),
    [
        ("+8613800138000", "86"),
        ("+85251234567", "852"),
        ("+12025550123", "1"),
        ("+442079460000", "44"),
        ("+9715012345678", "971"),
        ("13800138000", None),
        ("+", None),
        ("+abc", None),
    ],
)
def test_calling_code_of_an_e164_number(phone, code):
    assert calling_code(phone) == code


# -- routing --------------------------------------------------------------------------------


def test_each_number_goes_through_its_country_route(make_routed, sms_server, tencent):
    app = make_routed(SMSCODE_SENDER_ROUTES={"86": "aliyun", "*": ["tencent"]})
    client = app.test_client()
    assert send(client).status_code == 200
    assert send(client, HK_PHONE).status_code == 200
    assert [s.phones for s in sms_server.sent] == [["13800138000"]]
    assert len(tencent.sent) == 1 and tencent.last_code(HK_PHONE)
    assert carrier(app) == "aliyun" and carrier(app, HK_PHONE) == "tencent"
    assert verify(client, tencent.last_code(HK_PHONE), phone=HK_PHONE).status_code == 200
    assert verify(client, sms_server.last_code(PHONE)).status_code == 200


def test_smscode_sender_is_the_star_route_unless_star_is_given(make_routed, sms_server, tencent):
    app = make_routed(SMSCODE_SENDER="aliyun", SMSCODE_SENDER_ROUTES={"852": "tencent"})
    with app.app_context():
        service = get_service()
        assert service.sender_names == ("aliyun", "tencent")  # "*" (SMSCODE_SENDER) first
    assert send(app.test_client()).status_code == 200 and len(sms_server.sent) == 1
    assert send(app.test_client(), HK_PHONE).status_code == 200 and len(tencent.sent) == 1
    # "*" given: it wins, SMSCODE_SENDER is not used to send.
    other = make_routed(SMSCODE_SENDER="aliyun", SMSCODE_SENDER_ROUTES={"*": "tencent"})
    assert send(other.test_client()).status_code == 200
    assert len(sms_server.sent) == 1 and len(tencent.sent) == 2
    with other.app_context():
        assert get_service().sender_names == ("tencent",)


def test_routes_covering_every_allowed_region_need_no_fallback(make_routed, sms_server, tencent):
    app = make_routed(SMSCODE_SENDER=None, SMSCODE_SENDER_ROUTES={"86": "aliyun", "852": "tencent"})
    assert send(app.test_client()).status_code == 200 and len(sms_server.sent) == 1
    assert send(app.test_client(), HK_PHONE).status_code == 200 and len(tencent.sent) == 1


def test_a_sender_named_in_several_routes_is_built_once(make_routed):
    app = make_routed(
        SMSCODE_SENDER_ROUTES={
            "86": ["aliyun", "tencent"],
            "852": ["tencent", "aliyun"],
            "*": "backup",
        }
    )
    with app.app_context():
        service = get_service()
    sender = service.sender
    assert isinstance(sender, RoutingSender)
    assert service.sender_names == ("backup", "aliyun", "tencent")
    by_name: dict[str, list[object]] = {}
    for route in sender.routes.values():
        for name, one in route:
            by_name.setdefault(name, []).append(one)
    assert {n: len({id(o) for o in objs}) for n, objs in by_name.items()} == {
        "aliyun": 1,
        "tencent": 1,
        "backup": 1,
    }
    # The longest route's sum: aliyun (1 s) + tencent (1 s).
    assert sender.send_seconds == 2.0


def test_without_routes_nothing_changes(make_routed):
    app = make_routed(SMSCODE_SENDER=["aliyun", "tencent"])
    with app.app_context():
        service = get_service()
    assert isinstance(service.sender, FailoverSender)
    assert service.sender_names == ("aliyun", "tencent")
    assert service.sender.send_seconds == 2.0


# -- failover per route, across vendors --------------------------------------------------------


def test_a_route_fails_over_from_alibaba_to_tencent_with_the_same_out_id(
    make_routed, sms_server, tencent, caplog
):
    app = make_routed(SMSCODE_SENDER_ROUTES={"86": ["aliyun", "tencent"], "*": "tencent"})
    sms_server.fail_next("isp.SYSTEM_ERROR")
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        response = send(app.test_client())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["delivery"] == "sent"
    assert sms_server.sent == [] and len(tencent.sent) == 1  # one SMS in all
    [attempt] = aliyun_sends(sms_server)
    [carried] = tencent_sends(tencent)
    assert attempt.params["OutId"] == json.loads(carried.body)["SessionContext"]
    [moved] = failover_lines(caplog)
    assert "sender=aliyun" in moved and "next=tencent" in moved
    assert "reason=isp.SYSTEM_ERROR" in moved
    [line] = send_lines(caplog)
    assert "sender=tencent" in line and "outcome=sent" in line
    assert SENDERS.snapshot() == {("aliyun", "failover"): 1, ("tencent", "sent"): 1}
    assert FAILOVERS.snapshot() == {("aliyun", "tencent", "isp.SYSTEM_ERROR"): 1}
    assert carrier(app) == "tencent"
    assert verify(app.test_client(), tencent.last_code(PHONE)).status_code == 200


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ("http_500", "InternalError"),
        ("refused", "SDK.HttpError"),
        ("account", "isv.AMOUNT_NOT_ENOUGH"),
    ],
)
def test_definite_alibaba_failures_move_to_tencent(make_routed, sms_server, tencent, fault, reason):
    config: dict[str, Any] = {"SMSCODE_SENDER": ["aliyun", "tencent"]}
    if fault == "refused":
        config["SMSCODE_ALIYUN_ENDPOINT"] = f"127.0.0.1:{free_port()}"  # nothing listens
    elif fault == "http_500":
        sms_server.http_error_next(500)
    else:
        sms_server.fail_next("isv.AMOUNT_NOT_ENOUGH")
    app = make_routed(**config)
    response = send(app.test_client())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert sms_server.sent == [] and len(tencent.sent) == 1
    assert carrier(app) == "tencent"
    assert FAILOVERS.snapshot() == {("aliyun", "tencent", reason): 1}


@pytest.mark.parametrize(
    "code",
    ["LimitExceeded.AppDailyLimit", "FailedOperation.InsufficientBalanceInSmsPackage"],
)
def test_definite_tencent_failures_move_to_alibaba(make_routed, sms_server, tencent, code):
    app = make_routed(SMSCODE_SENDER_ROUTES={"*": ["tencent", "aliyun"]})
    tencent.fail_next(code)
    response = send(app.test_client())
    assert response.status_code == 200, response.get_data(as_text=True)
    assert tencent.sent == [] and len(sms_server.sent) == 1
    assert carrier(app) == "aliyun"
    assert FAILOVERS.snapshot() == {("tencent", "aliyun", code): 1}


def test_tencent_refused_connection_moves_to_alibaba(make_routed, sms_server):
    app = make_routed(
        SMSCODE_SENDER=["tencent", "aliyun"],
        SMSCODE_TENCENT_ENDPOINT=f"127.0.0.1:{free_port()}",
    )
    assert send(app.test_client()).status_code == 200 and len(sms_server.sent) == 1
    assert carrier(app) == "aliyun"


def test_an_unconfirmed_alibaba_send_never_moves(make_routed, sms_server, tencent):
    app = make_routed(SMSCODE_SENDER_ROUTES={"86": ["aliyun", "tencent"], "*": "tencent"})
    sms_server.stall_next(1.5)  # recorded, answered after the 1 s timeout
    response = send(app.test_client())
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"
    assert tencent_sends(tencent) == []  # never a second SMS
    assert FAILOVERS.snapshot() == {}
    assert SENDERS.snapshot() == {("aliyun", "unconfirmed"): 1}


def test_a_tencent_reset_after_the_request_never_moves(make_routed, sms_server, tencent):
    app = make_routed(SMSCODE_SENDER=["tencent", "aliyun"])
    tencent.drop_next(after_read=True, then_record=True)
    response = send(app.test_client())
    assert response.status_code == 200 and response.get_json()["delivery"] == "unconfirmed"
    assert len(tencent.sent) == 1 and aliyun_sends(sms_server) == []
    assert carrier(app) == "tencent"


@pytest.mark.parametrize(
    ("first", "fault", "status", "error"),
    [
        ("aliyun", "isv.BUSINESS_LIMIT_CONTROL", 429, "throttled"),
        ("aliyun", "isv.MOBILE_NUMBER_ILLEGAL", 400, "invalid_phone"),
        ("tencent", "LimitExceeded.PhoneNumberThirtySecondLimit", 429, "throttled"),
        ("tencent", "InvalidParameterValue.IncorrectPhoneNumber", 400, "invalid_phone"),
    ],
)
def test_flow_control_and_number_refusals_stop_across_vendors(
    make_routed, sms_server, tencent, first, fault, status, error
):
    second = "tencent" if first == "aliyun" else "aliyun"
    app = make_routed(SMSCODE_SENDER_ROUTES={"86": [first, second], "*": second})
    (sms_server if first == "aliyun" else tencent).fail_next(fault)
    assert_error(send(app.test_client()), status, error)
    assert sms_server.sent == [] and tencent.sent == []
    other = tencent_sends(tencent) if second == "tencent" else aliyun_sends(sms_server)
    assert other == []  # the second vendor was never asked
    assert FAILOVERS.snapshot() == {}
    assert SENDERS.snapshot() == {(first, "failed"): 1}


def test_every_sender_of_a_route_down_is_502_once(make_routed, sms_server, tencent, caplog):
    app = make_routed(SMSCODE_SENDER_ROUTES={"*": ["aliyun", "tencent"]})
    sms_server.http_error_next(503)
    tencent.fail_next("LimitExceeded.AppDailyLimit")
    with caplog.at_level(logging.INFO, logger="flask_smscode"):
        assert_error(send(app.test_client()), 502, "provider_error")
    [line] = send_lines(caplog)
    assert "sender=tencent" in line
    assert SENDERS.snapshot() == {("aliyun", "failover"): 1, ("tencent", "failed"): 1}
    with app.app_context():
        assert get_service().status(PHONE).cooldown == 0  # the reservation was given back
    assert sms_server.sent == [] and tencent.sent == []


# -- which vendor carried a send --------------------------------------------------------------


def test_the_carrier_shows_in_status_cli_delivery_and_metrics(make_routed, sms_server, tencent):
    prometheus_client = pytest.importorskip("prometheus_client")
    from flask_smscode.metrics import SmsCodeCollector

    app = make_routed(SMSCODE_SENDER_ROUTES={"86": ["aliyun", "tencent"], "*": "tencent"})
    sms_server.fail_next("isp.SYSTEM_ERROR")
    assert send(app.test_client()).status_code == 200
    runner = app.test_cli_runner()
    result = runner.invoke(smscode, ["status", PHONE], env=ENGLISH)
    assert result.exit_code == 0 and "Sent by: tencent" in result.output
    as_json = json.loads(runner.invoke(smscode, ["status", PHONE, "--json"]).output)
    assert as_json["sender"] == "tencent"
    with app.app_context():
        record = delivery_status(PHONE)
    assert record.sender == "tencent" and record.out_id == as_json["out_id"]
    registry = prometheus_client.CollectorRegistry()
    registry.register(SmsCodeCollector())
    moved = registry.get_sample_value(
        "smscode_sender_failovers_total",
        {"from_sender": "aliyun", "to_sender": "tencent", "reason": "isp.SYSTEM_ERROR"},
    )
    carried = registry.get_sample_value(
        "smscode_sender_attempts_total", {"sender": "tencent", "outcome": "sent"}
    )
    assert moved == 1.0 and carried == 1.0


def test_failover_labels_are_bounded():
    FAILOVERS.reset()
    SENDERS.allow(["aliyun", "tencent"])
    FAILOVERS.count("aliyun", "someone-else", "x" * 300)
    for n in range(100):
        FAILOVERS.count("aliyun", "tencent", f"Code{n}")
    snapshot = FAILOVERS.snapshot()
    assert ("aliyun", "other", "other") in snapshot
    reasons = {reason for (_, _, reason) in snapshot}
    assert len(reasons) <= 33 and "other" in reasons
    FAILOVERS.reset()


# -- configuration ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("routes", "extra", "named"),
    [
        ({"86": "aliyn"}, {}, "SMSCODE_SENDER_ROUTES['86']: 'aliyn' is not a registered sender"),
        ({"86": []}, {}, "SMSCODE_SENDER_ROUTES['86'] must name at least one sender"),
        ({"86": ""}, {}, "SMSCODE_SENDER_ROUTES['86'] must name at least one sender"),
        ({"86": ["aliyun", "aliyun"]}, {}, "SMSCODE_SENDER_ROUTES['86'] names 'aliyun'"),
        ({"+86": "aliyun"}, {}, "SMSCODE_SENDER_ROUTES: '+86' is not a country calling code"),
        ({86: "aliyun"}, {}, "SMSCODE_SENDER_ROUTES: 86 is not a country calling code"),
        ({"999": "aliyun"}, {}, "SMSCODE_SENDER_ROUTES: '999' is not a country calling code"),
        ({"CN": "aliyun"}, {}, "SMSCODE_SENDER_ROUTES: 'CN' is not a country calling code"),
        ({}, {}, "SMSCODE_SENDER_ROUTES must be a non-empty dict"),
        (["aliyun"], {}, "SMSCODE_SENDER_ROUTES must be a non-empty dict"),
        (
            {"86": "aliyun"},
            {"SMSCODE_SENDER": None},
            "SMSCODE_SENDER_ROUTES has no route for HK",
        ),
        (
            {"86": "aliyun", "852": "tencent"},
            {"SMSCODE_SENDER": None, "SMSCODE_ALLOWED_REGIONS": ["*"]},
            "SMSCODE_SENDER_ROUTES has no route for every region",
        ),
    ],
)
def test_bad_routes_fail_at_start_naming_the_key(make_routed, routes, extra, named):
    with pytest.raises(ConfigurationError) as info:
        make_routed(SMSCODE_SENDER_ROUTES=routes, **extra)
    assert named in str(info.value)
    assert BACKUP_SECRET not in str(info.value) and SECRET_KEY not in str(info.value)


def test_a_named_sender_cannot_override_the_routes(make_routed, backup):
    with pytest.raises(ConfigurationError) as info:
        make_routed(
            SMSCODE_SENDER_ROUTES={"*": "backup"},
            SMSCODE_SENDERS_CONFIG={
                "backup": {**backup_entry(backup), "SMSCODE_SENDER_ROUTES": {"*": "aliyun"}}
            },
        )
    assert "SMSCODE_SENDERS_CONFIG['backup']: 'SMSCODE_SENDER_ROUTES'" in str(info.value)


def test_doctor_checks_every_routed_sender(make_routed):
    from flask_smscode.cli.doctor import run_checks

    app = make_routed(
        SMSCODE_SENDER=None, SMSCODE_SENDER_ROUTES={"86": ["aliyun", "backup"], "852": "backup"}
    )
    assert {c.sender for c in run_checks(app) if c.check not in ("store", "replicas")} == {
        "aliyun",
        "backup",
    }
