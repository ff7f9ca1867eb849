"""Redis Cluster: one slot per phone, phones spread over the masters, and traffic that rides
through a slot migration and a master failover without restarting the app.

The behaviour suite itself runs on the cluster through the ``store_uri`` fixture's
``cluster`` parameter; this module covers what only a cluster has. Topology changes use a
private cluster (with replicas), so the session-wide one stays untouched.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest

from flask_smscode import ConfigurationError
from tests.helpers import send, verify, wrong
from tests.servers.failover_traffic import TRAFFIC_CONFIG, Traffic, fresh_round
from tests.servers.redis_cluster import ClusterNode, RedisCluster

pytestmark = pytest.mark.redis_cluster

#: Only the ``cluster`` param of ``store_uri``: ``make_app`` then talks to the session cluster.
on_cluster = pytest.mark.parametrize("store_uri", ["cluster"], indirect=True)
#: ``make_app`` with the memory store; the test overrides SMSCODE_STORAGE_URI itself.
own_uri = pytest.mark.parametrize("store_uri", ["memory"], ids=["own-cluster"], indirect=True)


def e164(national: str) -> str:
    return "+86" + national


def phone_keys(cluster: RedisCluster, prefix: str) -> dict[str, ClusterNode]:
    """Every key under ``prefix`` on every master -> the master holding it."""
    found: dict[str, ClusterNode] = {}
    for node in cluster.masters():
        for key in node.client.scan_iter(match=f"{prefix}*", count=1000):
            found[key] = node
    return found


@on_cluster
def test_keys_of_one_phone_share_one_slot(make_app, sms_server, redis_cluster, key_prefix):
    phone, other = "13800138000", "13900139000"
    client = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0).test_client()
    assert send(client, phone, purpose="login").status_code == 200
    login = sms_server.last_code(phone)
    assert send(client, phone, purpose="signup").status_code == 200
    assert send(client, other).status_code == 200
    assert verify(client, wrong(login), phone=phone).status_code == 400  # a failure counted
    assert verify(client, login, phone=phone).status_code == 200  # a code consumed

    keys = phone_keys(redis_cluster, key_prefix)
    mine = [key for key in keys if e164(phone) in key]
    assert mine, f"no key names the phone; keys: {sorted(keys)}"
    slots = {redis_cluster.keyslot(key) for key in mine}
    assert slots == {redis_cluster.keyslot(e164(phone))}, mine  # the E.164 is the hash tag
    assert {redis_cluster.keyslot(key) for key in keys if e164(other) in key} == {
        redis_cluster.keyslot(e164(other))
    }
    # no key mixes two phones, and each phone's keys sit on the master owning its slot
    assert not [key for key in mine if e164(other) in key]
    assert {keys[key].port for key in mine} == {redis_cluster.owner_of(slots.pop()).port}


@on_cluster
def test_many_phones_spread_over_all_masters(make_app, sms_server, redis_cluster, key_prefix):
    client = make_app(**TRAFFIC_CONFIG).test_client()
    phones = [f"138{n:08d}" for n in range(10_000_000, 10_000_000 + 300 * 7919, 7919)]
    for phone in phones:
        assert send(client, phone).status_code == 200
    assert len(sms_server.sent) == len(phones)

    holders: Counter[int] = Counter()
    for key, node in phone_keys(redis_cluster, key_prefix).items():
        if "{+86138" in key:  # a phone's hash, not the client's
            holders[node.port] += 1
    assert set(holders) == {node.port for node in redis_cluster.masters()}, holders
    assert min(holders.values()) >= len(phones) // 5, holders  # about a third each
    for phone in phones[:: len(phones) // 10]:  # and each is served where it lives
        code = sms_server.last_code(phone)
        assert verify(client, code, phone=phone).status_code == 200


@own_uri
def test_redis_url_to_a_cluster_node_is_refused_naming_the_cluster_scheme(make_app, redis_cluster):
    port = redis_cluster.seed_ports[0]
    with pytest.raises(ConfigurationError, match=r"redis\+cluster://"):
        make_app(SMSCODE_STORAGE_URI=f"redis://127.0.0.1:{port}/0")


# -- topology changes under traffic -------------------------------------------------------------


@pytest.fixture(scope="module")
def moving_cluster() -> Iterator[RedisCluster]:
    """A private three-master cluster with one replica each, for migrations and failovers."""
    cluster = RedisCluster(replicas=True).start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


def phones_on(cluster: RedisCluster, node: ClusterNode, count: int, start: int) -> list[str]:
    """``count`` national numbers whose phone hash (tag: the E.164) lives on ``node``."""
    found: list[str] = []
    n = start
    while len(found) < count:
        phone = f"139{n:08d}"
        if cluster.owner_of(cluster.keyslot(e164(phone))) is node:
            found.append(phone)
        n += 1
    return found


@own_uri
def test_slot_migration_during_traffic(make_app, sms_server, moving_cluster, record_property):
    app = make_app(SMSCODE_STORAGE_URI=moving_cluster.uri, **TRAFFIC_CONFIG)
    source, target, _ = moving_cluster.masters()
    phones = phones_on(moving_cluster, source, 4, start=20_000_000)
    traffic = Traffic(app, sms_server, phones).start()
    try:
        time.sleep(0.5)
        for phone in phones:  # each phone's slot: half its keys moved, then all (ASK, MOVED)
            moving_cluster.migrate_slot(
                moving_cluster.keyslot(e164(phone)), target, pause_seconds=0.3
            )
        settled = time.monotonic()
        time.sleep(1.0)
    finally:
        traffic.stop()
    record_property("traffic", traffic.report())
    print("slot migration:", traffic.report())
    for phone in phones:
        assert moving_cluster.owner_of(moving_cluster.keyslot(e164(phone))) is target
    assert not traffic.unexpected(), traffic.report()
    traffic.assert_recovered(settled)
    assert not traffic.lost, traffic.report()  # a migration loses nothing
    fresh_round(app.test_client(), sms_server, phones)


@own_uri
def test_master_failover_during_traffic(make_app, sms_server, moving_cluster, record_property):
    app = make_app(SMSCODE_STORAGE_URI=moving_cluster.uri, **TRAFFIC_CONFIG)
    masters = moving_cluster.masters()
    failing, other = masters[0], masters[1]
    phones = phones_on(moving_cluster, failing, 3, start=30_000_000) + phones_on(
        moving_cluster, other, 1, start=30_000_000
    )
    traffic = Traffic(app, sms_server, phones).start()
    try:
        time.sleep(0.5)
        promoted = moving_cluster.failover(failing)
        settled = time.monotonic()
        time.sleep(1.5)
    finally:
        traffic.stop()
    record_property("traffic", traffic.report())
    print("master failover:", traffic.report())
    assert promoted.role() == "master" and failing.role() == "slave"
    assert moving_cluster.owner_of(moving_cluster.keyslot(e164(phones[0]))) is promoted
    assert not traffic.unexpected(), traffic.report()
    traffic.assert_recovered(settled)
    assert not traffic.lost, traffic.report()  # a manual failover waits for the replica
    fresh_round(app.test_client(), sms_server, phones)
    for phone, code in traffic.verified[-5:]:  # single use holds across the failover
        assert verify(app.test_client(), code, phone=phone).status_code == 400


@own_uri
def test_master_crash_and_forced_failover_during_traffic(
    make_app, sms_server, moving_cluster, record_property
):
    """A master dies (SIGKILL) and its replica is forced to take over: requests for its slots
    answer 503 until the client sees the new owner, then all work again; writes the replica
    had not received yet may be lost (asynchronous replication), so those codes answer
    code_expired — never a 500."""
    app = make_app(
        SMSCODE_STORAGE_URI=moving_cluster.uri,
        SMSCODE_STORAGE_TIMEOUT_SECONDS=0.5,
        **TRAFFIC_CONFIG,
    )
    masters = moving_cluster.masters()
    dying, other = masters[0], masters[1]
    phones = phones_on(moving_cluster, dying, 3, start=40_000_000) + phones_on(
        moving_cluster, other, 1, start=40_000_000
    )
    traffic = Traffic(app, sms_server, phones).start()
    try:
        time.sleep(0.5)
        promoted = moving_cluster.crash_and_promote(dying)
        settled = time.monotonic()
        time.sleep(1.5)
    finally:
        traffic.stop()
    record_property("traffic", traffic.report())
    print("master crash:", traffic.report())
    assert moving_cluster.owner_of(moving_cluster.keyslot(e164(phones[0]))) is promoted
    assert not traffic.unexpected(), traffic.report()
    traffic.assert_recovered(settled)
    fresh_round(app.test_client(), sms_server, phones)
    moving_cluster.restart(dying)  # it comes back as the promoted node's replica
    fresh_round(app.test_client(), sms_server, phones)
