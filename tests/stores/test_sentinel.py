"""Redis Sentinel: traffic rides through ``SENTINEL FAILOVER`` without restarting the app.

The behaviour suite itself runs on Sentinel through the ``store_uri`` fixture's
``sentinel`` parameter; the failover uses a private set so the session-wide one stays put.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from tests.helpers import send, verify
from tests.servers.failover_traffic import TRAFFIC_CONFIG, Traffic, fresh_round
from tests.servers.redis_sentinel import RedisSentinelSet

pytestmark = pytest.mark.redis_sentinel

own_uri = pytest.mark.parametrize("store_uri", ["memory"], ids=["own-sentinel"], indirect=True)


@pytest.fixture(scope="module")
def failing_over() -> Iterator[RedisSentinelSet]:
    sentinels = RedisSentinelSet().start()
    try:
        yield sentinels
    finally:
        sentinels.cleanup()


@pytest.mark.parametrize("store_uri", ["sentinel"], indirect=True)
def test_the_app_writes_to_the_master_the_sentinels_name(
    make_app, sms_server, redis_sentinel, key_prefix
):
    client = make_app().test_client()
    assert send(client).status_code == 200
    with redis_sentinel.master() as master:
        assert list(master.scan_iter(match=f"{key_prefix}*"))


@own_uri
def test_sentinel_failover_during_traffic(make_app, sms_server, failing_over, record_property):
    """Work resumes after ``SENTINEL FAILOVER`` with no restart, no 5xx but the documented 503,
    Until Sentinel turns the old master into a replica (its
    INFO period, about 10 s) pooled connections may still reach it, so a code written
    there can be lost: its verify answers 400 (``code_expired``/``invalid_code``) — counted
    and reported, allowed only inside that window."""
    app = make_app(
        SMSCODE_STORAGE_URI=failing_over.uri, SMSCODE_STORAGE_TIMEOUT_SECONDS=0.5, **TRAFFIC_CONFIG
    )
    phones = [f"137{n:08d}" for n in range(10_000_000, 10_000_004)]
    old = failing_over.master_port()
    traffic = Traffic(app, sms_server, phones, pause_seconds=0.02).start()
    try:
        time.sleep(0.5)
        switched = time.monotonic()
        new = failing_over.failover()  # returns once the old master follows the new one
        settled = time.monotonic()
        time.sleep(1.5)
    finally:
        traffic.stop()
    report = f"{traffic.report()}; failover {settled - switched:.1f}s (old master {old} -> {new})"
    record_property("traffic", report)
    print("sentinel failover:", report)
    assert new != old and failing_over.master_port() == new

    assert not [a for a in traffic.answers if a.status >= 500 and a.status != 503], report
    outside = [a for a in traffic.unexpected() if not switched <= a.started < settled]
    assert not outside, report
    inside = [a for a in traffic.unexpected() if switched <= a.started < settled]
    assert all(
        a.op == "verify" and a.status == 400 and a.error in ("code_expired", "invalid_code")
        for a in inside
    ), report
    traffic.assert_recovered(settled)  # every phone works again, with no restart of the app
    fresh_round(app.test_client(), sms_server, phones)
    with failing_over.master() as master:  # and the state lives on the new master
        assert master.info("replication")["role"] == "master"


@own_uri
def test_a_code_consumed_during_a_failover_does_not_verify_again(
    make_app, sms_server, failing_over
):
    """A code sent before the failover (so the replica holds it) and consumed while the
    sentinels already name the new master must stay consumed once the old master is gone:
    a one-time code never verifies twice."""
    app = make_app(
        SMSCODE_STORAGE_URI=failing_over.uri, SMSCODE_STORAGE_TIMEOUT_SECONDS=0.5, **TRAFFIC_CONFIG
    )
    client = app.test_client()
    phones = [f"137{n:08d}" for n in range(20_000_000, 20_000_004)]
    codes = {}
    for phone in phones:
        assert send(client, phone).status_code == 200
        codes[phone] = sms_server.last_code(phone)
    with failing_over.master() as master:
        assert master.execute_command("WAIT", 1, 2000) == 1  # the replica has every code
    old, new = failing_over.start_failover()
    first = {phone: verify(client, code, phone=phone).status_code for phone, code in codes.items()}
    failing_over.wait_old_master_follows(old, new)
    again = {phone: verify(client, code, phone=phone).status_code for phone, code in codes.items()}
    assert all(status in (200, 503) for status in first.values()), first
    replayed = [p for p in phones if first[p] == 200 and again[p] == 200]
    assert not replayed, f"verified twice: {len(replayed)} of {len(phones)}; {first} {again}"
