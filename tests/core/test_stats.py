"""The store's hourly counters (stores/stats.py) and their summary (core/stats.py): the
counts equal the requests made over HTTP, on memory://, a real Redis, Sentinel and
Cluster (the ``store_uri`` fixture); keys expire within 14 days; p50/p95 come from
reports pushed with known send and receive times."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest
from flask import Flask

from flask_smscode.core.stats import Window, operator_stats, quantile, summarize
from flask_smscode.errors import ConfigurationError
from flask_smscode.stores.stats import (
    BOUNDS,
    SENT,
    TTL_SECONDS,
    HourlyCounters,
    delivery_field,
    label,
    stats_key,
)
from tests.helpers import send, verify, wrong

SECRET = "stats-report-secret-0123456789abcdefghij"
MOBILE, UNICOM, TELECOM = "13800138000", "18600186000", "18900189000"


def windows(app: Flask, hours: tuple[int, ...] = (1, 24)) -> list[Window]:
    return operator_stats(app.extensions["smscode"].store, hours)


@pytest.fixture
def stats_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(
        SMSCODE_ALIYUN_REPORT_SECRET=SECRET,
        SMSCODE_GLOBAL_SEND_LIMITS="2/hour",
        SMSCODE_GUARD_MIN_SENDS=1000,
    )


def test_counts_equal_the_requests_made(stats_app, sms_server):
    client = stats_app.test_client()
    assert send(client, MOBILE).status_code == 200
    assert send(client, UNICOM).status_code == 200
    assert send(client, TELECOM).status_code == 429  # the global budget: a guard block
    assert send(client, MOBILE).status_code == 429  # the phone's cooldown
    assert verify(client, sms_server.last_code(MOBILE), MOBILE).status_code == 200
    assert verify(client, wrong(sms_server.last_code(UNICOM)), UNICOM).status_code == 400
    assert verify(client, "123456", TELECOM).status_code == 400  # no code: expired
    hour, day = windows(stats_app)
    for window in (hour, day):
        assert (window.sends, window.verified) == (2, 1)
        assert window.conversion == 0.5
        assert window.refusals == {"global": 1, "phone": 1}
        assert window.guard_blocks == 1
        assert window.verify_failures == {"invalid": 1, "expired": 1}
        assert window.latency == []
    assert (hour.hours, day.hours) == (1, 24)
    assert hour.since.timestamp() - day.since.timestamp() == 23 * 3600


def test_an_idempotent_replay_is_counted_once(make_app, sms_server):
    app = make_app()
    client = app.test_client()
    headers = {"Idempotency-Key": "stats-replay-0001"}
    first = send(client, MOBILE, headers=headers)
    assert first.status_code == 200
    assert send(client, MOBILE, headers=headers).get_json() == first.get_json()
    assert windows(app)[0].sends == 1


def test_hour_keys_expire_within_14_days(stats_app, sms_server):
    assert send(stats_app.test_client(), MOBILE).status_code == 200
    store = stats_app.extensions["smscode"].store
    hour = store.stats_hour()

    def ttl() -> int:
        if hasattr(store, "client"):  # Redis, Sentinel, Cluster
            return int(store.client.ttl(stats_key(store.keys.prefix, hour)))
        return int(store.stats.ttl(hour))

    # On Cluster the counters are written by a background thread every half second.
    deadline = time.monotonic() + 3
    while ttl() <= 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 0 < ttl() <= TTL_SECONDS == 14 * 86400


def push(client: Any, reports: list[dict[str, Any]]) -> None:
    response = client.post(f"/sms/reports/{SECRET}", data=json.dumps(reports))
    assert response.status_code == 200, response.get_data(as_text=True)


def test_delivery_percentiles_from_pushed_reports(make_app, sms_server):
    app = make_app(SMSCODE_ALIYUN_REPORT_SECRET=SECRET, SMSCODE_GUARD_SOURCE_SENDS=0)
    client = app.test_client()
    mobiles = [f"1380013800{i}" for i in range(10)]
    for phone in [*mobiles, UNICOM]:
        assert send(client, phone).status_code == 200
    report = sms_server.delivery_report
    push(
        client,
        [report(sms_server.last_sms(p), report_delay=3) for p in mobiles[:5]]
        + [report(sms_server.last_sms(p), report_delay=15) for p in mobiles[5:]]
        + [report(sms_server.last_sms(UNICOM), report_delay=900)],
    )
    push(client, [report(sms_server.last_sms(mobiles[0]), report_delay=3)])  # duplicate
    (hour,) = windows(app, (1,))
    by_carrier = {(x.carrier, x.vendor): x for x in hour.latency}
    mobile = by_carrier["china_mobile", "aliyun"]
    assert mobile.count == 10  # the duplicate is not counted again
    # 5 in (2, 5], 5 in (10, 20]: the median at the top of the first, p95 at 90% of the second
    assert (mobile.p50, mobile.p95, mobile.over) == (5.0, 19.0, False)
    unicom = by_carrier["china_unicom", "aliyun"]
    assert (unicom.count, unicom.p95, unicom.over) == (1, 600.0, True)
    assert hour.as_json()["delivery"][0] == {
        "carrier": "china_mobile",
        "vendor": "aliyun",
        "count": 10,
        "p50_seconds": 5.0,
        "p95_seconds": 19.0,
        "over": False,
    }


# -- the arithmetic, without a store ----------------------------------------------------


def test_quantile_interpolates_inside_its_bucket():
    buckets = [0] * (len(BOUNDS) + 1)
    buckets[BOUNDS.index(10)] = 4  # four reports in (5, 10]
    assert quantile(buckets, 0.5) == (7.5, False)
    assert quantile(buckets, 1.0) == (10.0, False)
    assert quantile([0] * (len(BOUNDS) + 1), 0.5) == (0.0, False)


def test_delivery_fields_are_bounded_and_safe():
    assert delivery_field("china_mobile", "aliyun", 0.4) == "d:china_mobile:aliyun:0"
    assert delivery_field("other", "aliyun", 601) == f"d:other:aliyun:{len(BOUNDS)}"
    assert label("Evil:Vendor|x" * 10) == ("evil_vendor_x" * 10)[:32]
    assert label(None) == "unknown"


def test_summary_skips_fields_of_another_version():
    window = summarize(1, datetime.now(timezone.utc), [])
    assert window.conversion is None
    odd = summarize(1, window.since, [{"d:x:y:99": 1, "d:bad": 2, "sent": 1}])
    assert odd.latency == [] and odd.sends == 1


def test_memory_hours_expire_after_14_days():
    now = [1_800_000_000.0]
    counters = HourlyCounters(clock=lambda: now[0])
    counters.bump(SENT)
    counters.bump(None)  # an idempotent replay: nothing
    hour = counters.hour()
    assert counters.read([hour]) == {hour: {SENT: 1}}
    assert counters.ttl(hour) == TTL_SECONDS
    now[0] += TTL_SECONDS + 1
    counters.bump(SENT)  # a write sweeps what expired
    assert counters.read([hour]) == {}


def test_a_store_without_counters_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="SMSCODE_STORAGE_URI"):
        operator_stats(object())
