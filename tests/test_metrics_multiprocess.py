"""Metrics that add up under gunicorn: 4 workers (sync, and gthread), PROMETHEUS_MULTIPROC_DIR
in a temporary directory, a real Redis and the loopback Dysmsapi server. Every scrape of
/metrics, whichever worker answers it, shows the app's totals, also after a worker was
killed and replaced (its counts stay, its live gauge goes: child_exit / mark_process_dead).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.gunicorn_app import (
    GLOBAL_LIMIT,
    REPORT_SECRET,
    GunicornApp,
    start_gunicorn,
    stop_quietly,
)

SCRAPES = 12  # more scrapes than workers: each lands on whichever worker accepts it


def scrape(app: GunicornApp) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    status, text = app.request("GET", "/metrics")
    assert status == 200, text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def phones(start: int, count: int) -> list[str]:
    """Mainland mobiles of one China Mobile block, one send each (no per-phone limit hit)."""
    return [f"1380013{n:04d}" for n in range(start, start + count)]


def send_and_verify(app: GunicornApp, sms_server: DysmsapiServer, numbers: list[str]) -> None:
    for phone in numbers:
        status, body = app.request("POST", "/sms/send", {"phone": phone})
        assert status == 200, body
    for phone in numbers:
        code = sms_server.last_code(phone)
        status, body = app.request(
            "POST", "/sms/verify", {"phone": phone, "code": code, "purpose": "login"}
        )
        assert status == 200, body


def assert_totals(app: GunicornApp, sent: int, delivered: int = 0) -> None:
    """Every scrape shows ``sent`` sends, verifies and conversions, whichever worker answers."""
    for _ in range(SCRAPES):
        samples = scrape(app)
        seen = {
            "sends": value(samples, "smscode_sends_total", purpose="login", outcome="sent"),
            "verifies": value(
                samples, "smscode_verifies_total", purpose="login", outcome="verified"
            ),
            "provider": value(
                samples, "smscode_provider_requests_total", action="SendSms", code="OK"
            ),
            "latency": value(samples, "smscode_provider_latency_seconds_count", action="SendSms"),
            "conversion_sent": value(
                samples,
                "smscode_conversion_total",
                stage="sent",
                purpose="login",
                carrier="china_mobile",
                vendor="aliyun",
            ),
            "conversion_verified": value(
                samples,
                "smscode_conversion_total",
                stage="verified",
                purpose="login",
                carrier="china_mobile",
                vendor="aliyun",
            ),
            "sender": value(
                samples, "smscode_sender_attempts_total", sender="aliyun", outcome="sent"
            ),
        }
        assert seen == dict.fromkeys(seen, float(sent)), seen
        delivered_count = value(
            samples,
            "smscode_delivery_seconds_count",
            vendor="aliyun",
            carrier="china_mobile",
            outcome="delivered",
        )
        assert delivered_count == delivered
        assert value(samples, "smscode_guard_global_limit", window_seconds="3600") == GLOBAL_LIMIT


@pytest.mark.parametrize(("worker_class", "threads"), [("sync", 1), ("gthread", 4)])
def test_totals_add_up_across_workers(
    tmp_path: Path,
    redis_url: str,
    key_prefix: str,
    sms_server: DysmsapiServer,
    worker_class: str,
    threads: int,
) -> None:
    multiproc = tmp_path / "prom"
    multiproc.mkdir()
    (multiproc / "counter_999999.db").write_bytes(b"left by the last run")  # on_starting
    app = start_gunicorn(
        tmp_path,
        redis_url=redis_url,
        prefix=key_prefix,
        provider=sms_server.endpoint,
        worker_class=worker_class,
        threads=threads,
        multiproc_dir=multiproc,
    )
    try:
        assert not (multiproc / "counter_999999.db").exists()  # emptied at start
        first = phones(0, 8)
        send_and_verify(app, sms_server, first)
        assert_totals(app, 8)

        # Delivery reports pushed to the app: the histogram counts each send once.
        url = f"{app.url}/sms/reports/{REPORT_SECRET}"
        reports = [
            sms_server.delivery_report(sms_server.last_sms(phone), report_delay=4.0)
            for phone in first
        ]
        status, answer = sms_server.push_reports(url, reports)
        assert sms_server.push_accepted(status, answer), (status, answer)
        sms_server.push_reports(url, reports[:2])  # duplicates: not observed again
        assert_totals(app, 8, delivered=8)
        samples = scrape(app)
        bucket = {"vendor": "aliyun", "carrier": "china_mobile", "outcome": "delivered"}
        assert value(samples, "smscode_delivery_seconds_bucket", le="2.0", **bucket) == 0
        assert value(samples, "smscode_delivery_seconds_bucket", le="5.0", **bucket) == 8
        assert value(samples, "smscode_delivery_seconds_sum", **bucket) == pytest.approx(32.0)

        # A worker dies: gunicorn replaces it, child_exit drops its live gauge file, its
        # counts stay in the totals.
        victim = app.workers()[0]
        gauge_file = multiproc / f"gauge_livemax_{victim}.db"
        assert gauge_file.exists()  # each worker set the guard's budget at start-up
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while victim in app.workers() or len(app.workers()) != 4:
            assert time.monotonic() < deadline, app.output
            time.sleep(0.1)
        deadline = time.monotonic() + 10
        while gauge_file.exists():  # child_exit runs in the master once it reaped the worker
            assert time.monotonic() < deadline, sorted(p.name for p in multiproc.iterdir())
            time.sleep(0.1)
        assert_totals(app, 8, delivered=8)

        send_and_verify(app, sms_server, phones(100, 4))
        assert_totals(app, 12, delivered=8)
    finally:
        stop_quietly(app)


def test_a_metric_file_caught_half_created_is_read_again_not_a_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's file created the instant /metrics reads it holds 0 bytes, and
    prometheus_client's reader raises struct.error on it (seen under load: a 500 on a
    scrape). The read is tried again; a file that stays empty gives a 503 that says why."""
    from flask_smscode import metrics

    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path))
    empty = tmp_path / "counter_424242.db"
    empty.write_bytes(b"")
    body, status, _ = metrics.metrics_payload()
    assert status == 503 and b"being written" in body

    real = metrics.time.sleep

    def written_meanwhile(seconds: float) -> None:
        empty.unlink(missing_ok=True)  # the worker finished its file (here: gone)
        real(seconds)

    monkeypatch.setattr(metrics.time, "sleep", written_meanwhile)
    body, status, _ = metrics.metrics_payload()
    assert status == 200, body
