"""Every outcome is counted; the Prometheus collector exposes the counts at scrape time."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flask_smscode.metrics import STATS, register_metrics
from tests.helpers import PHONE, send, verify


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.fixture
def fresh_stats():
    STATS.reset()
    yield STATS
    STATS.reset()


def run_traffic(client, sms_server) -> None:
    """2 sent, 1 throttled, 1 provider error; 1 wrong code, 1 verified, 1 expired."""
    assert send(client, PHONE).status_code == 200
    assert send(client, PHONE).status_code == 429
    assert send(client, "13900139000", purpose="signup").status_code == 200
    sms_server.fail_next("isp.SYSTEM_ERROR")
    assert send(client, "13700137000").status_code == 502
    code = sms_server.last_code(PHONE)
    assert verify(client, f"{(int(code) + 1) % 10**6:06d}").status_code == 400
    assert verify(client, code).status_code == 200
    assert verify(client, code).status_code == 400


def test_scrape_shows_the_suite_counts(app, sms_server, fresh_stats):
    registry = CollectorRegistry()
    register_metrics(registry)
    assert register_metrics(registry) is register_metrics(registry)  # once per registry
    run_traffic(app.test_client(), sms_server)
    samples = scrape(generate_latest(registry).decode())
    assert value(samples, "smscode_sends_total", purpose="login", outcome="sent") == 1
    assert value(samples, "smscode_sends_total", purpose="signup", outcome="sent") == 1
    assert value(samples, "smscode_sends_total", purpose="login", outcome="throttled") == 1
    assert value(samples, "smscode_sends_total", purpose="login", outcome="provider_error") == 1
    assert value(samples, "smscode_verifies_total", purpose="login", outcome="invalid_code") == 1
    assert value(samples, "smscode_verifies_total", purpose="login", outcome="verified") == 1
    assert value(samples, "smscode_verifies_total", purpose="login", outcome="code_expired") == 1
    assert value(samples, "smscode_provider_requests_total", action="SendSms", code="OK") == 2
    assert (
        value(samples, "smscode_provider_requests_total", action="SendSms", code="isp.SYSTEM_ERROR")
        == 1
    )
    assert value(samples, "smscode_provider_latency_seconds_count", action="SendSms") == 3
    assert (
        value(samples, "smscode_provider_latency_seconds_bucket", action="SendSms", le="+Inf") == 3
    )
    assert 0 < value(samples, "smscode_provider_latency_seconds_sum", action="SendSms") < 5


def test_demo_serves_metrics(sms_server, aliyun_config, fresh_stats):
    from demo_app import create_app

    app = create_app({"TESTING": True, **aliyun_config})
    client = app.test_client()
    run_traffic(client, sms_server)
    response = client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    samples = scrape(response.get_data(as_text=True))
    assert value(samples, "smscode_sends_total", purpose="login", outcome="sent") == 1
    assert value(samples, "smscode_verifies_total", purpose="login", outcome="verified") == 1


def test_counting_needs_no_prometheus(app, sms_server, fresh_stats):
    run_traffic(app.test_client(), sms_server)
    snap = STATS.snapshot()
    assert snap["sends"][("login", "sent")] == 1
    assert snap["verifies"][("login", "verified")] == 1
