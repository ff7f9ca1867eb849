"""The shipped dashboard and alert rules against a real Prometheus.

A private ``prometheus`` (Debian's package, loopback, tests/servers/prometheus_server.py)
scrapes, every second, a gunicorn-served app (2 workers, multiprocess mode, real Redis, the
loopback Dysmsapi server) while traffic runs: sends to the four mainland carriers' blocks,
most codes verified, delivery reports pushed (some failed), a burst into one block that the
guard's prefix budget refuses. Then every PromQL expression of the dashboard's panels and
of the alert rules (its left-hand side: each rule is "<measure> <comparison> <threshold>")
must return data through the HTTP API, ``promtool check rules`` must pass, and an induced
provider outage (every SendSms failing) must make SmsCodeProviderErrors fire.

The rules are loaded from a test copy whose ``for:`` is 0s (the shipped file waits minutes
before firing); nothing else is changed.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.gunicorn_app import REPORT_SECRET, GunicornApp, start_gunicorn
from tests.servers.prometheus_server import PrometheusServer, available, promtool_check_rules

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "contrib" / "grafana" / "flask-smscode.json"
ALERTS = ROOT / "contrib" / "prometheus" / "alerts.yml"
# One block per mainland carrier (phones.carrier_label): mobile, unicom, telecom, broadnet.
BLOCKS = ("1380013", "1860018", "1890018", "1921234")
ROUNDS = 6
PREFIX_BUDGET = 10  # per block and hour in this app: the burst below passes it
_COMPARISON = re.compile(r"^(?P<measure>.+?)\s*(?:>|<|>=|<=)\s*[0-9.]+\s*$", re.DOTALL)

pytestmark = pytest.mark.skipif(
    not available(),
    reason="/usr/bin/prometheus or promtool is missing (apt-get install prometheus; "
    "scripts/test.sh does)",
)


def dashboard_expressions() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    return [(f"{p['title']} [{t['refId']}]", t["expr"]) for p in panels for t in p["targets"]]


def alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def measure_of(expr: str) -> str:
    """The left-hand side of ``<measure> <comparison> <threshold>``."""
    found = _COMPARISON.match(expr.strip())
    assert found, f"not '<measure> <comparison> <threshold>': {expr}"
    return found["measure"]


def request_ok(app: GunicornApp, path: str, body: dict[str, Any], *ok: int) -> Any:
    status, answer = app.request("POST", path, body)
    assert status in ok, (path, status, answer)
    return answer


def run_traffic(app: GunicornApp, sms_server: DysmsapiServer) -> None:
    """ROUNDS rounds, a scrape or two apart: 4 sends (one per carrier), 3 verified, their
    delivery reports (one failed, delays of 2-90 s); then a burst the guard refuses."""
    reports_url = f"{app.url}/sms/reports/{REPORT_SECRET}"
    for n in range(ROUNDS):
        numbers = [f"{block}{n:04d}" for block in BLOCKS]
        for phone in numbers:
            request_ok(app, "/sms/send", {"phone": phone}, 200)
        for index, phone in enumerate(numbers):
            if index != n % len(numbers):  # one code per round is never typed back
                code = sms_server.last_code(phone)
                request_ok(app, "/sms/verify", {"phone": phone, "code": code}, 200)
        reports = [
            sms_server.delivery_report(
                sms_server.last_sms(phone),
                success=index != (n + 1) % len(numbers),
                report_delay=(2, 8, 25, 90)[(index + n) % 4],
            )
            for index, phone in enumerate(numbers)
        ]
        assert sms_server.push_accepted(*sms_server.push_reports(reports_url, reports))
        time.sleep(1.2)
    for n in range(PREFIX_BUDGET + 3):  # one block past its budget: guard refusals
        request_ok(app, "/sms/send", {"phone": f"1390000{n:04d}"}, 200, 429)
        if n >= PREFIX_BUDGET:
            time.sleep(1.1)  # refusals over several scrapes: rate() sees them rise


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, _sms_server: DysmsapiServer
) -> Iterator[tuple[GunicornApp, PrometheusServer, DysmsapiServer]]:
    tmp = tmp_path_factory.mktemp("prometheus")
    rules = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"  # fire on the first evaluation (the shipped file waits)
    test_rules = tmp / "alerts.yml"
    test_rules.write_text(yaml.safe_dump(rules))
    _sms_server.reset()
    app = start_gunicorn(
        tmp,
        redis_url=redis_url,
        prefix=f"prom-{secrets.token_hex(4)}",
        provider=_sms_server.endpoint,
        workers=2,
        env={"METRICS_APP_PREFIX_LIMITS": f"{PREFIX_BUDGET}/hour"},
    )
    prometheus = PrometheusServer(tmp, [app.url.removeprefix("http://")], [test_rules])
    try:
        prometheus.start()
        prometheus.wait_for_first_scrape()
        run_traffic(app, _sms_server)
        yield app, prometheus, _sms_server
    finally:
        prometheus.stop()
        app.stop()
        _sms_server.reset()


def wait_for_data(prometheus: PrometheusServer, expr: str, timeout: float = 10.0) -> list[Any]:
    """The query's result once it is non-empty with a finite value (scrapes are 1 s apart)."""
    deadline = time.monotonic() + timeout
    result: list[Any] = []
    while time.monotonic() < deadline:
        result = prometheus.query(expr)
        if any(math.isfinite(float(item["value"][1])) for item in result):
            return result
        time.sleep(0.5)
    return result


def test_the_shipped_rules_pass_promtool():
    checked = promtool_check_rules(ALERTS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in checked.stdout


def test_the_alerts_cover_what_operators_asked_for():
    assert {rule["alert"] for rule in alert_rules()} == {
        "SmsCodeConversionDrop",
        "SmsCodeProviderErrors",
        "SmsCodeDeliverySlow",
        "SmsCodeStorageUnavailable",
        "SmsCodeGuardBlocks",
        "SmsCodeGlobalBudgetNearLimit",
    }


def test_every_dashboard_panel_returns_data(stack):
    _, prometheus, _ = stack
    assert prometheus.targets_up()
    empty = [name for name, expr in dashboard_expressions() if not wait_for_data(prometheus, expr)]
    assert not empty, f"panels without data: {empty}"


def test_every_alert_expression_returns_data(stack):
    _, prometheus, _ = stack
    empty = [
        rule["alert"]
        for rule in alert_rules()
        if not wait_for_data(prometheus, measure_of(rule["expr"]))
    ]
    assert not empty, f"alert expressions without data: {empty}"


def test_the_labels_are_the_bounded_sets(stack):
    _, prometheus, _ = stack
    carriers = {
        item["metric"]["carrier"]
        for item in prometheus.query('sum by (carrier) (smscode_conversion_total{stage="sent"})')
    }
    assert carriers == {"china_mobile", "china_unicom", "china_telecom", "china_broadnet"}
    vendors = {
        item["metric"]["vendor"]
        for item in prometheus.query("sum by (vendor) (smscode_delivery_seconds_count)")
    }
    assert vendors == {"aliyun"}
    reasons = {
        item["metric"]["reason"]
        for item in prometheus.query("sum by (reason) (smscode_guard_refusals_total)")
    }
    assert reasons == {"prefix"}
    sent = prometheus.query('sum(smscode_conversion_total{stage="sent"})')
    assert float(sent[0]["value"][1]) == ROUNDS * len(BLOCKS) + PREFIX_BUDGET


def test_a_provider_outage_fires_the_provider_alert(stack):
    app, prometheus, sms_server = stack
    firing = [a for a in prometheus.alerts() if a["labels"]["alertname"] == "SmsCodeProviderErrors"]
    assert not firing, firing  # all well before the outage
    sms_server.fail_next("isp.SYSTEM_ERROR", times=10_000)
    try:
        # An outage lasts: sends fail over several scrapes (rate() needs a series to rise
        # between two scrapes; a new error code's first scrape is its starting point).
        for n in range(20):
            request_ok(app, "/sms/send", {"phone": f"1570000{n:04d}"}, 502)
            time.sleep(0.3)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            firing = [
                alert
                for alert in prometheus.alerts()
                if alert["labels"]["alertname"] == "SmsCodeProviderErrors"
                and alert["state"] == "firing"
            ]
            if firing:
                break
            time.sleep(0.5)
        assert firing, prometheus.alerts()
        assert float(firing[0]["value"]) > 0.2
        assert firing[0]["labels"]["severity"] == "critical"
    finally:
        sms_server.reset()


def test_the_dashboard_renders_from_prometheus(stack, tmp_path):
    """contrib/grafana/render.py draws every panel from query_range over the whole run,
    the outage included (the README's image: SMSCODE_DASHBOARD_PNG=<path> also takes the
    PNG with headless Chromium)."""
    _, prometheus, _ = stack
    sys.path.insert(0, str(DASHBOARD.parent))
    try:
        import render  # contrib/grafana/render.py: a script, not part of the package
    finally:
        sys.path.remove(str(DASHBOARD.parent))
    page, height = render.render(prometheus.url, prometheus.started_at, time.time(), step=1.0)
    assert page.count("<svg") == len(json.loads(DASHBOARD.read_text())["panels"])
    assert "No data" not in page
    target = os.environ.get("SMSCODE_DASHBOARD_PNG")
    if target:
        html_file = tmp_path / "dashboard.html"
        html_file.write_text(page, encoding="utf-8")
        render.screenshot(html_file, Path(target), height)
        assert Path(target).stat().st_size > 10_000
