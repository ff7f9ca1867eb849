"""What operators watch, in one process: delivery latency from pushed reports
(``smscode_delivery_seconds``), conversion by purpose, carrier and vendor
(``smscode_conversion_total``), the guard's global budget, all with bounded labels; and
``/metrics`` when prometheus_client is not installed (multiprocess mode:
test_metrics_multiprocess.py; the dashboard and alerts: test_metrics_prometheus.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flask_smscode.aliyun.reports import delivery_seconds
from flask_smscode.metrics import (
    _DOCS,
    _LABELS,
    CONVERSIONS,
    DELIVERY,
    DELIVERY_BUCKETS,
    GUARD_LIMITS,
    SmsCodeCollector,
    metrics_payload,
)
from flask_smscode.phones import carrier_label
from tests.helpers import send, verify

SECRET = "operators-report-secret-0123456789abcdef"
MOBILE, UNICOM, TELECOM = "13800138000", "18600186000", "18900189000"


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    DELIVERY.reset()
    CONVERSIONS.reset()
    yield
    DELIVERY.reset()
    CONVERSIONS.reset()


def samples() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(SmsCodeCollector())
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


def value(name: str, **labels: str) -> float:
    return samples().get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def report_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(
        SMSCODE_ALIYUN_REPORT_SECRET=SECRET,
        SMSCODE_PURPOSES=["login", "signup"],
        SMSCODE_GLOBAL_SEND_LIMITS="500/hour;5000/day",
    )


def push(client: Any, reports: list[dict[str, Any]]) -> None:
    response = client.post(f"/sms/reports/{SECRET}", data=json.dumps(reports))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_delivery_seconds_by_vendor_carrier_and_outcome(report_app, sms_server):
    client = report_app.test_client()
    for phone in (MOBILE, UNICOM, TELECOM):
        assert send(client, phone).status_code == 200
    report = sms_server.delivery_report
    push(
        client,
        [
            report(sms_server.last_sms(MOBILE), report_delay=3),
            report(sms_server.last_sms(UNICOM), report_delay=45),
            report(sms_server.last_sms(TELECOM), success=False, report_delay=700),
        ],
    )
    push(client, [report(sms_server.last_sms(MOBILE), report_delay=3)])  # a duplicate
    mobile = {"vendor": "aliyun", "carrier": "china_mobile", "outcome": "delivered"}
    assert value("smscode_delivery_seconds_count", **mobile) == 1  # the duplicate: not again
    assert value("smscode_delivery_seconds_bucket", le="2.0", **mobile) == 0
    assert value("smscode_delivery_seconds_bucket", le="5.0", **mobile) == 1
    assert value("smscode_delivery_seconds_sum", **mobile) == 3
    unicom = {"vendor": "aliyun", "carrier": "china_unicom", "outcome": "delivered"}
    assert value("smscode_delivery_seconds_bucket", le="30.0", **unicom) == 0
    assert value("smscode_delivery_seconds_bucket", le="60.0", **unicom) == 1
    telecom = {"vendor": "aliyun", "carrier": "china_telecom", "outcome": "failed"}
    assert value("smscode_delivery_seconds_bucket", le="600.0", **telecom) == 0
    assert value("smscode_delivery_seconds_bucket", le="+Inf", **telecom) == 1
    bounds = {
        labels["le"]
        for (name, pairs), _ in samples().items()
        if name == "smscode_delivery_seconds_bucket"
        for labels in [dict(pairs)]
    }
    assert bounds == {str(b) for b in DELIVERY_BUCKETS} | {"+Inf"}


def test_conversion_by_purpose_carrier_and_vendor(report_app, sms_server):
    client = report_app.test_client()
    assert send(client, MOBILE).status_code == 200
    assert send(client, UNICOM, purpose="signup").status_code == 200
    assert verify(client, sms_server.last_code(MOBILE), MOBILE).status_code == 200
    assert verify(client, "000000", UNICOM, purpose="signup").status_code == 400  # wrong code
    conversion = "smscode_conversion_total"
    login = {"purpose": "login", "carrier": "china_mobile", "vendor": "aliyun"}
    assert value(conversion, stage="sent", **login) == 1
    assert value(conversion, stage="verified", **login) == 1
    signup = {"purpose": "signup", "carrier": "china_unicom", "vendor": "aliyun"}
    assert value(conversion, stage="sent", **signup) == 1
    assert value(conversion, stage="verified", **signup) == 0


def test_conversion_labels_are_bounded():
    CONVERSIONS.count("sent", "a purpose nobody configured", "china_mobile", "evil\nvendor")
    CONVERSIONS.count("pwned", "login", "not a carrier", None)
    assert CONVERSIONS.snapshot() == {
        ("sent", "unknown", "china_mobile", "other"): 1,
        ("other", "login", "other", "other"): 1,
    }
    DELIVERY.observe("x" * 500, "carrier?", "lost", -5)
    assert list(DELIVERY.buckets) == [("other", "other", "other")]
    assert DELIVERY.sums[("other", "other", "other")] == 0  # a clock a little off: 0, not < 0


def test_the_guard_budget_is_a_gauge(report_app):
    assert GUARD_LIMITS.limits["3600"] >= 500
    assert value("smscode_guard_global_limit", window_seconds="86400") >= 5000


@pytest.mark.parametrize(
    ("phone", "label"),
    [
        ("+8613800138000", "china_mobile"),
        ("+8618600186000", "china_unicom"),
        ("+8617712345678", "china_telecom"),
        ("+8619212345678", "china_broadnet"),
        ("+85291234567", "other"),
        ("+14155550100", "other"),
        ("+861380013800", "other"),  # not a whole mainland mobile
        (None, "other"),
    ],
)
def test_carrier_of_a_number_block(phone, label):
    assert carrier_label(phone) == label


@pytest.mark.parametrize(
    ("sent", "reported", "seconds"),
    [
        ("2026-12-05 10:00:00", "2026-12-05 10:00:07", 7.0),
        ("2026-12-05 23:59:50", "2026-12-06 00:00:20", 30.0),
        ("2026-12-05 10:00:07", "2026-12-05 10:00:00", None),  # before its send
        ("2026-12-05 10:00:00", "2026-12-07 10:00:00", None),  # two days: not a delivery
        ("yesterday", "2026-12-05 10:00:00", None),
        (None, "2026-12-05 10:00:00", None),
    ],
)
def test_delivery_seconds_from_alibaba_times(sent, reported, seconds):
    assert delivery_seconds(sent, reported) == seconds


def test_metrics_payload_in_one_process(report_app):
    body, status, mimetype = metrics_payload()
    assert status == 200 and mimetype.startswith("text/plain")
    assert b"smscode_guard_global_limit" in body


def test_metrics_without_prometheus_client_says_why():
    """prometheus_client missing (blocked in a fresh interpreter): the package still sends
    and counts, and /metrics answers 503 with the reason instead of failing."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["prometheus_client"] = None  # import prometheus_client -> ImportError
        from flask import Flask
        from flask_smscode import sms_bp
        from flask_smscode.metrics import STATS, metrics_view
        app = Flask("x")
        app.config.update(SECRET_KEY="k", TESTING=True, SMSCODE_SENDER="console")
        app.register_blueprint(sms_bp)
        app.add_url_rule("/metrics", "metrics", metrics_view)
        client = app.test_client()
        assert client.post("/sms/send", json={"phone": "13800138000"}).status_code == 200
        assert STATS.snapshot()["sends"][("login", "sent")] == 1
        response = client.get("/metrics")
        print(response.status_code)
        print(response.get_data(as_text=True))
        """
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("503\n")
    assert "prometheus_client is not installed" in out
    assert "flask-smscode[prometheus]" in out


def test_every_family_is_known_to_multiprocess_mode():
    """Multiprocess mode re-creates each family from metrics._DOCS / _LABELS: a family the
    collector yields but these tables lack would be missing from the gunicorn totals."""
    registry = CollectorRegistry()
    registry.register(SmsCodeCollector())
    families = {family.name: family for family in registry.collect()}
    assert set(families) <= set(_LABELS), set(families) - set(_LABELS)
    assert set(_DOCS) == set(_LABELS)
