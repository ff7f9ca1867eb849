"""Acknowledged writes survive a failover (``SMSCODE_STORAGE_MIN_REPLICAS``, WAIT).

Redis replicates asynchronously: a send answered 200 whose write lived only on a master that
then died is lost (the delivered code answers ``code_expired``), and a verify whose consume is
lost lets the same code verify again. Each scenario runs twice: with ``0`` (no waiting) the
test shows the loss happening, with ``"auto"`` (the default) it shows none. The loss is made
reproducible by freezing the replica (SIGSTOP) so it cannot have the write, then killing the
master (SIGKILL), waking the replica and promoting it.

Topologies: a master + replica pair (``redis://`` with an explicit setting: a plain URI has
no failover of its own, so "auto" is 0 there), a Sentinel set and a Cluster with replicas,
each private to this module (they get killed).
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from flask_smscode.errors import StorageUnavailable
from flask_smscode.stores import redis as redis_store
from flask_smscode.stores.redis import RedisStore
from tests.helpers import E164, error_of, send, verify
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.redis_cluster import ClusterNode, RedisCluster, wait_until
from tests.servers.redis_proxy import RedisProxy
from tests.servers.redis_sentinel import RedisSentinelSet
from tests.servers.redis_server import RedisServer

# A short storage timeout keeps the refused cases fast: WAIT gets a quarter of it (100 ms).
FAST = {"SMSCODE_STORAGE_TIMEOUT_SECONDS": 0.4, "SMSCODE_PHONE_LIMITS": "50/hour"}
SETTINGS = pytest.mark.parametrize("min_replicas", [0, "auto"], ids=["min0", "auto"])
# Every test names its own topology in SMSCODE_STORAGE_URI: make_app's store_uri runs once.
pytestmark = pytest.mark.parametrize("store_uri", ["memory"], ids=["own"], indirect=True)


def phone_key(prefix: str, e164: str = E164) -> str:
    return f"{prefix}:{{{e164}}}"


def e164(phone: str) -> str:
    return f"+86{phone}"


def code_of(sms_server: DysmsapiServer, phone: str) -> str:
    return sms_server.last_code(phone)


def until_not_503(call: Callable[[], Any], timeout: float = 20) -> Any:
    """The first answer that is not the documented 503 (clients find a new master)."""
    deadline = time.monotonic() + timeout
    while True:
        response = call()
        if response.status_code != 503 or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def clog(master: redis.Redis, tag: str) -> None:
    """Fill the replication link of a frozen replica. SIGSTOP alone is not enough: the kernel
    keeps receiving into the replica's socket buffer, and the woken replica would read writes
    made after the freeze even though the master died. Once the master holds replication
    data it cannot send (the replica client's output buffer, ``omem``), every later write
    exists only on the master, as with a real partition or a master dying mid-send. The
    junk keys carry ``tag`` so that on Cluster they land in the slot under test."""
    blob = "x" * (1 << 20)
    for i in range(256):
        master.set(f"junk:{{{tag}}}:{i}", blob)
        if any(int(c["omem"]) > 1 << 20 for c in master.client_list(_type="replica")):
            return
    raise AssertionError("the replication link never filled up")


# == a master and its replica ==================================================================


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[RedisServer, RedisServer]]:
    master = RedisServer().start()
    replica = RedisServer(args=["--replicaof", "127.0.0.1", str(master.port)]).start()
    try:
        with redis.Redis(port=replica.port, decode_responses=True) as client:
            wait_until(lambda: client.info("replication")["master_link_status"] == "up", 20, "sync")
        yield master, replica
    finally:
        replica.cleanup()
        master.cleanup()


@pytest.fixture
def master_admin(pair: tuple[RedisServer, RedisServer]) -> Iterator[Any]:
    client = redis.Redis(port=pair[0].port, socket_timeout=5, decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def frozen_replica(pair: tuple[RedisServer, RedisServer]) -> Iterator[RedisServer]:
    """The replica, to be paused by the test; always woken and caught up afterwards."""
    master, replica = pair
    yield replica
    replica.resume()
    with redis.Redis(port=master.port, decode_responses=True) as client:
        client.set("smscode-durability-probe", 1)
        assert client.wait(1, 5000) == 1


@pytest.mark.redis
@SETTINGS
def test_a_send_refused_by_wait_leaves_nothing_and_sends_no_sms(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    pair: tuple[RedisServer, RedisServer],
    master_admin: Any,
    frozen_replica: RedisServer,
    min_replicas: int | str,
) -> None:
    app = make_app(
        SMSCODE_STORAGE_URI=pair[0].url,
        SMSCODE_STORAGE_MIN_REPLICAS=1 if min_replicas == "auto" else 0,
        **FAST,
    )
    client = app.test_client()
    frozen_replica.pause()
    response = send(client)
    if min_replicas == 0:  # answered 200 though no replica has the code: the loss window
        assert response.status_code == 200
        assert len(sms_server.messages_to("13800138000")) == 1
        return
    assert response.status_code == 503 and error_of(response) == "storage_unavailable"
    assert sms_server.requests == [] and sms_server.messages_to("13800138000") == []
    # Nothing half-applied: no code, no cooldown, no counted send, no guard count.
    phone_hash = master_admin.hgetall(phone_key(app.config["SMSCODE_KEY_PREFIX"], E164))
    assert not {"cd", "c:login"} & set(phone_hash), phone_hash
    assert phone_hash.get("n", "|0").split("|")[1] == "0", phone_hash
    frozen_replica.resume()
    again = send(client)  # at once: no cooldown burned by the 503
    assert again.status_code == 200, again.get_json()
    assert len(sms_server.messages_to("13800138000")) == 1


@pytest.mark.redis
def test_a_send_refused_by_wait_releases_its_idempotency_key(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    pair: tuple[RedisServer, RedisServer],
    frozen_replica: RedisServer,
) -> None:
    """The key claimed in the same script is released with the reservation: the retry with
    the same Idempotency-Key sends (once), it is neither replayed as a 503 nor "in progress"."""
    app = make_app(SMSCODE_STORAGE_URI=pair[0].url, SMSCODE_STORAGE_MIN_REPLICAS=1, **FAST)
    client = app.test_client()
    key = {"Idempotency-Key": "durable-1"}
    frozen_replica.pause()
    assert send(client, headers=key).status_code == 503
    frozen_replica.resume()
    retried = send(client, headers=key)
    assert retried.status_code == 200, retried.get_json()
    replayed = send(client, headers=key)
    assert replayed.status_code == 200 and replayed.headers.get("Idempotent-Replayed") == "true"
    assert len(sms_server.messages_to("13800138000")) == 1


@pytest.mark.redis
def test_a_verify_refused_by_wait_leaves_the_code_usable(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    pair: tuple[RedisServer, RedisServer],
    master_admin: Any,
    frozen_replica: RedisServer,
) -> None:
    app = make_app(SMSCODE_STORAGE_URI=pair[0].url, SMSCODE_STORAGE_MIN_REPLICAS=1, **FAST)
    client = app.test_client()
    assert send(client).status_code == 200
    code = code_of(sms_server, "13800138000")
    before = master_admin.hgetall(phone_key(app.config["SMSCODE_KEY_PREFIX"], E164))
    frozen_replica.pause()
    refused = verify(client, code)
    assert refused.status_code == 503 and error_of(refused) == "storage_unavailable"
    assert (
        master_admin.hgetall(phone_key(app.config["SMSCODE_KEY_PREFIX"], E164)) == before
    )  # put back as it was
    frozen_replica.resume()
    assert verify(client, code).status_code == 200  # the same code, on the retry
    assert verify(client, code).status_code == 400  # and only once


@pytest.mark.redis
def test_a_wrong_code_is_answered_whatever_the_replicas_say(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    pair: tuple[RedisServer, RedisServer],
    master_admin: Any,
    frozen_replica: RedisServer,
) -> None:
    """A wrong code grants nothing: its 400 (attempt counted) does not depend on the WAIT."""
    app = make_app(SMSCODE_STORAGE_URI=pair[0].url, SMSCODE_STORAGE_MIN_REPLICAS=1, **FAST)
    client = app.test_client()
    assert send(client).status_code == 200
    code = code_of(sms_server, "13800138000")
    frozen_replica.pause()
    wrong = verify(client, f"{(int(code) + 1) % 1_000_000:06d}")
    assert wrong.status_code == 400 and error_of(wrong) == "invalid_code"
    assert "f:login" in master_admin.hgetall(phone_key(app.config["SMSCODE_KEY_PREFIX"], E164))


@pytest.mark.redis
def test_a_send_and_a_verify_still_cost_one_round_trip_with_wait(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    pair: tuple[RedisServer, RedisServer],
    master_admin: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The EVALSHA and its WAIT leave in one write on one connection and Redis sees exactly
    those two commands from the app (MONITOR), as test_stores' one-round-trip test checks
    without replicas."""
    app = make_app(
        SMSCODE_STORAGE_URI=pair[0].url,
        SMSCODE_STORAGE_MIN_REPLICAS=1,
        SMSCODE_STORAGE_OPTIONS={"client_name": "smscode-app"},
    )
    client = app.test_client()
    ip = {"REMOTE_ADDR": "203.0.113.9"}
    # Warm-up: scripts loaded, the clock offset measured (both happen once per process).
    assert send(client, "13900139000", environ_base=ip).status_code == 200
    writes: list[int] = []
    real = redis.connection.AbstractConnection.send_packed_command

    def counted(connection: Any, command: Any, check_health: bool = True) -> None:
        writes.append(id(connection))
        real(connection, command, check_health)

    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted)

    def commands(call: Callable[[], Any], status: int) -> list[tuple[str, str]]:
        apps = {c["addr"] for c in master_admin.client_list() if c["name"] == "smscode-app"}
        with master_admin.monitor() as monitor:
            writes.clear()  # after the MONITOR command itself
            assert call().status_code == status
            app_writes = list(writes)
            master_admin.echo("end-of-request")
            seen = []
            while True:
                command = monitor.next_command()
                if "end-of-request" in command["command"]:
                    break
                address = f"{command['client_address']}:{command['client_port']}"
                if address in apps:
                    seen.append((command["command"].split()[0].upper(), address))
        assert len(app_writes) == 1, app_writes  # one round trip
        return seen

    sent = commands(lambda: send(client, environ_base=ip), 200)
    assert [name for name, _ in sent] == ["EVALSHA", "WAIT"] and len({a for _, a in sent}) == 1
    code = code_of(sms_server, "13800138000")
    checked = commands(lambda: verify(client, code, environ_base=ip), 200)
    assert [name for name, _ in checked] == ["EVALSHA", "WAIT"]
    assert len({a for _, a in checked}) == 1


@pytest.mark.redis
def test_the_setting_is_validated_and_the_memory_store_ignores_it(
    make_app: Callable[..., Flask], pair: tuple[RedisServer, RedisServer]
) -> None:
    from flask_smscode.errors import ConfigurationError

    for bad in (-1, "two", True, 1.5):
        with pytest.raises(ConfigurationError, match="SMSCODE_STORAGE_MIN_REPLICAS"):
            make_app(SMSCODE_STORAGE_MIN_REPLICAS=bad).test_client().get("/")
    app = make_app(SMSCODE_STORAGE_URI="memory://", SMSCODE_STORAGE_MIN_REPLICAS=2)
    assert send(app.test_client()).status_code == 200
    store = RedisStore.from_uri(pair[0].url, timeout=0.4)
    try:  # a plain redis:// URI: nothing to fail over to, "auto" waits for no replica
        assert store.replication() == (1, 0)
    finally:
        store.close()
    down = RedisStore.from_uri("redis://127.0.0.1:1/0", min_replicas=1, timeout=0.2)
    try:
        with pytest.raises(StorageUnavailable):
            down.replication()
    finally:
        down.close()


# == Sentinel ==================================================================================


def sentinel_kill_and_promote(sentinels: RedisSentinelSet, frozen: int) -> int:
    """SIGKILL the master, wake the frozen replica, let the sentinels promote it."""
    old = sentinels.master_port()
    dead = sentinels.processes.pop(old)
    dead.kill()
    dead.wait(timeout=10)
    sentinels.processes[frozen].send_signal(signal.SIGCONT)
    sentinels.wait_settled(frozen, timeout=30)
    # The operator brings the dead node back; it rejoins as the new master's replica. Until
    # then "auto" (1 on Sentinel) answers every granting decision 503: with no replica, a
    # write could not survive the next failover (README, "Durability").
    sentinels._spawn(
        old,
        [
            *("--port", str(old), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
            *("--dir", str(sentinels.root), "--replicaof", "127.0.0.1", str(frozen)),
        ],
    )
    with sentinels.data_client(frozen) as new_master:
        wait_until(lambda: new_master.wait(1, 100) == 1, 20, "the old master to follow")
    return frozen


def freeze_sentinel_replica(sentinels: RedisSentinelSet) -> None:
    sentinels.processes[sentinels.data_ports[1]].send_signal(signal.SIGSTOP)
    with sentinels.master() as master:
        clog(master, "sentinel")


def replicated(client: redis.Redis, key: str, field: str) -> Callable[[], bool]:
    return lambda: bool(client.hexists(key, field))


@pytest.mark.redis_sentinel
@SETTINGS
def test_sentinel_failover_loses_no_acknowledged_send_and_revives_no_used_code(
    make_app: Callable[..., Flask], sms_server: DysmsapiServer, min_replicas: int | str
) -> None:
    sentinels = RedisSentinelSet(down_after_ms=500, failover_timeout_ms=3000).start()
    try:
        app = make_app(
            SMSCODE_STORAGE_URI=sentinels.uri, SMSCODE_STORAGE_MIN_REPLICAS=min_replicas, **FAST
        )
        _failover_scenarios(
            app,
            sms_server,
            min_replicas,
            replica_client=sentinels.data_client(sentinels.data_ports[1]),
            freeze=lambda: freeze_sentinel_replica(sentinels),
            kill_and_promote=lambda: sentinel_kill_and_promote(sentinels, sentinels.data_ports[1]),
            phones=["13700000001", "13700000002", "13700000003", "13700000004"],
        )
    finally:
        for process in sentinels.processes.values():
            process.send_signal(signal.SIGCONT)
        sentinels.cleanup()


def _failover_scenarios(
    app: Flask,
    sms_server: DysmsapiServer,
    min_replicas: int | str,
    *,
    replica_client: redis.Redis,
    freeze: Callable[[], None],
    kill_and_promote: Callable[[], object],
    phones: list[str],
) -> None:
    """Both scenarios around one crash of the master holding ``phones``:

    - ``kept``: sent (200) while the replica runs: verifies after the failover;
    - ``used``: sent and verified (200) before the freeze: never verifies again;
    - ``lost``: sent while the replica is frozen: 200 with 0 and its code is lost by the
      failover; 503 with auto, no SMS, and a resend after the failover is not throttled;
    - ``reused``: sent before the freeze, verified while frozen: 200 with 0 and the failover
      brings the used code back; 503 with auto, and the code verifies once, after.
    """
    client = app.test_client()
    kept, used, lost, reused = phones
    prefix = app.config["SMSCODE_KEY_PREFIX"]
    for phone in (kept, used, reused):
        assert send(client, phone).status_code == 200
    assert verify(client, code_of(sms_server, used), phone=used).status_code == 200
    # Replicated already with auto; with 0, waited for here so that only what follows is lost.
    wait_until(replicated(replica_client, phone_key(prefix, e164(reused)), "c:login"), 5, "sync")
    wait_until(
        lambda: not replica_client.hexists(phone_key(prefix, e164(used)), "c:login"), 5, "sync"
    )
    freeze()
    lost_send = send(client, lost)
    reused_code = code_of(sms_server, reused)
    first_verify = verify(client, reused_code, phone=reused)
    if min_replicas == 0:
        assert lost_send.status_code == 200 and first_verify.status_code == 200
    else:
        assert lost_send.status_code == 503 and first_verify.status_code == 503
        assert sms_server.messages_to(lost) == []
    kill_and_promote()

    kept_verify = until_not_503(lambda: verify(client, code_of(sms_server, kept), phone=kept))
    assert kept_verify.status_code == 200, kept_verify.get_json()
    used_again = until_not_503(lambda: verify(client, code_of(sms_server, used), phone=used))
    assert used_again.status_code == 400  # replicated before the freeze: single use holds
    lost_after = until_not_503(
        lambda: (
            verify(client, code_of(sms_server, lost), phone=lost)
            if min_replicas == 0
            else send(client, lost)
        )
    )
    again = until_not_503(lambda: verify(client, reused_code, phone=reused))
    if min_replicas == 0:  # the bug, shown: a delivered code lost, a used code back
        assert lost_after.status_code == 400 and error_of(lost_after) == "code_expired"
        assert again.status_code == 200
        return
    # auto: the refused send left no cooldown on the survivor; the refused verify's code is
    # still good (once).
    assert lost_after.status_code == 200, lost_after.get_json()
    assert len(sms_server.messages_to(lost)) == 1
    assert again.status_code == 200
    assert verify(client, reused_code, phone=reused).status_code == 400


# == Cluster ===================================================================================


@pytest.fixture(scope="module")
def replicated_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster(replicas=True, node_timeout_ms=1000).start()
    try:
        yield cluster
    finally:
        for node in cluster.nodes:
            if node.process is not None:
                node.process.send_signal(signal.SIGCONT)
        cluster.cleanup()


def phones_on(cluster: RedisCluster, node: ClusterNode, count: int, start: int) -> list[str]:
    found: list[str] = []
    n = start
    while len(found) < count:
        phone = f"139{n:08d}"
        if cluster.owner_of(cluster.keyslot(e164(phone))) is node:
            found.append(phone)
        n += 1
    return found


def signal_node(node: ClusterNode, signum: int) -> None:
    if node.process is not None:
        node.process.send_signal(signum)


@pytest.mark.redis_cluster
@SETTINGS
def test_cluster_failover_loses_no_acknowledged_send_and_revives_no_used_code(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    replicated_cluster: RedisCluster,
    min_replicas: int | str,
) -> None:
    cluster = replicated_cluster
    master = cluster.masters()[0]
    replica = cluster.replica_of(master)
    app = make_app(
        SMSCODE_STORAGE_URI=cluster.uri, SMSCODE_STORAGE_MIN_REPLICAS=min_replicas, **FAST
    )
    phones = phones_on(cluster, master, 4, 50_000_000 if min_replicas == 0 else 60_000_000)
    tag = e164(phones[0])  # the junk of clog() goes to the same master

    def kill_and_promote() -> None:
        master.kill()
        signal_node(replica, signal.SIGCONT)
        replica.client.execute_command("CLUSTER FAILOVER", "FORCE")
        wait_until(lambda: replica.role() == "master", 20, f"{replica.port} to take over")
        cluster.wait_stable(20)

    # Reads on a cluster replica need READONLY, sent on the one connection the client keeps.
    reader = redis.Redis(port=replica.port, decode_responses=True, single_connection_client=True)
    reader.execute_command("READONLY")
    try:
        _failover_scenarios(
            app,
            sms_server,
            min_replicas,
            replica_client=reader,
            freeze=lambda: (signal_node(replica, signal.SIGSTOP), clog(master.client, tag)),
            kill_and_promote=kill_and_promote,
            phones=phones,
        )
    finally:
        reader.close()
        signal_node(replica, signal.SIGCONT)
        if master.process is None:
            cluster.restart(master)  # back as the new master's replica, for the next run


@pytest.mark.redis
@pytest.mark.parametrize(
    ("setting", "status"), [(1, "ok"), (2, "fail"), ("auto", None)], ids=["1", "2", "auto"]
)
def test_doctor_reports_the_replicas_against_the_setting(
    make_app: Callable[..., Flask],
    pair: tuple[RedisServer, RedisServer],
    setting: int | str,
    status: str | None,
) -> None:
    """One ``replicas`` line: the master's connected replicas vs the number required. A lone
    ``redis://`` at "auto" (0 required) with its replica reports OK: nothing waits."""
    from flask_smscode.cli import smscode
    from tests.helpers import ENGLISH

    app = make_app(
        register=False,
        SMSCODE_SENDER="console",
        SMSCODE_STORAGE_URI=pair[0].url,
        SMSCODE_STORAGE_MIN_REPLICAS=setting,
    )
    result = app.test_cli_runner().invoke(smscode, ["doctor", "--json"], env=ENGLISH)
    checks = {c["check"]: c for c in json.loads(result.output)["checks"]}
    replicas = checks["replicas"]
    assert replicas["params"]["have"] == 1
    assert replicas["status"] == (status or "ok"), replicas
    if status == "fail":
        assert result.exit_code == 1
        assert "needs 2: every send and verify answers 503" in replicas["detail"]
    else:
        assert replicas["params"]["need"] == (0 if setting == "auto" else setting)


# == replies lost with the connection ==========================================================
# The outcome the app cannot know: the decision ran on the master and its reply was lost (a
# master killed between running a script and answering). tests/servers/redis_proxy.py makes
# it exact. Each test fails without the deferred undo (RedisStore._defer_undo): the retry of
# the 503 heard 429 (a cooldown for an SMS never sent) or code_expired (a code consumed by a
# verify nobody was told about).


@pytest.fixture
def proxy(pair: tuple[RedisServer, RedisServer]) -> Iterator[RedisProxy]:
    with RedisProxy(pair[0].port) as proxied:
        yield proxied


def phone_hash(app: Flask, admin: Any, phone: str = E164) -> dict[str, str]:
    return dict(admin.hgetall(phone_key(app.config["SMSCODE_KEY_PREFIX"], phone)))


def sends_counted(fields: dict[str, str]) -> int:
    return int(fields.get("n", "|0").split("|")[1])


@pytest.mark.redis
@pytest.mark.parametrize("replicas", [0, 1], ids=["no-wait", "wait"])
def test_a_send_whose_reply_is_lost_leaves_no_cooldown_for_the_retry(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    master_admin: Any,
    proxy: RedisProxy,
    replicas: int,
) -> None:
    app = make_app(SMSCODE_STORAGE_URI=proxy.url, SMSCODE_STORAGE_MIN_REPLICAS=replicas, **FAST)
    client = app.test_client()
    assert send(client, "13900139000").status_code == 200  # warm-up: clock and scripts
    with proxy.losing_replies():
        lost = send(client)
        assert lost.status_code == 503 and error_of(lost) == "storage_unavailable"
        # The reservation did run: the phone holds a code and a cooldown, and no SMS left.
        assert {"cd", "c:login"} <= set(phone_hash(app, master_admin))
    assert proxy.lost_replies >= 1
    assert sms_server.messages_to("13800138000") == []
    retried = send(client)  # at once, on the same process: the undo runs first
    assert retried.status_code == 200, retried.get_json()
    assert len(sms_server.messages_to("13800138000")) == 1
    assert sends_counted(phone_hash(app, master_admin)) == 1  # the lost send's count given back
    assert app.extensions["smscode"].store.pending_undos() == 0


@pytest.mark.redis
def test_a_lost_send_is_given_back_in_the_background_without_a_retry(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    master_admin: Any,
    proxy: RedisProxy,
) -> None:
    """Another process's request for the phone must not meet the reservation either: the
    undo lands by itself once Redis answers, without a request of this process."""
    app = make_app(SMSCODE_STORAGE_URI=proxy.url, **FAST)
    client = app.test_client()
    assert send(client, "13900139000").status_code == 200  # warm-up: clock and scripts
    with proxy.losing_replies():
        assert send(client).status_code == 503
        time.sleep(0.6)  # background passes meet the lost connection too: kept, not dropped
        assert app.extensions["smscode"].store.pending_undos() == 1
    store = app.extensions["smscode"].store
    wait_until(lambda: store.pending_undos() == 0, 5, "the deferred undo to get through")
    assert not {"cd", "c:login"} & set(phone_hash(app, master_admin))
    assert sends_counted(phone_hash(app, master_admin)) == 0
    assert store.undo_failures == 0


@pytest.mark.redis
def test_the_undo_of_a_send_that_never_ran_gives_nothing_back(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    master_admin: Any,
    proxy: RedisProxy,
) -> None:
    """The app cannot tell a lost reply from a command that never arrived; the undo must
    not take back another send's count (cancel.lua gives back only what the phone's code or
    cooldown proves this send reserved)."""
    app = make_app(SMSCODE_STORAGE_URI=proxy.url, SMSCODE_RESEND_INTERVAL_SECONDS=0, **FAST)
    client = app.test_client()
    assert send(client).status_code == 200
    first = phone_hash(app, master_admin)
    proxy.mode("reset_before")
    assert send(client).status_code == 503
    proxy.mode("pass")
    assert proxy.dropped_commands >= 1
    assert phone_hash(app, master_admin) == first  # the second send never reached Redis
    assert send(client).status_code == 200
    assert sends_counted(phone_hash(app, master_admin)) == 2  # both real sends counted
    assert len(sms_server.messages_to("13800138000")) == 2


@pytest.mark.redis
def test_a_verify_whose_reply_is_lost_leaves_the_code_usable_once(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    master_admin: Any,
    proxy: RedisProxy,
) -> None:
    """Nobody got a 200 for that consume, so the retry with the same code verifies — once."""
    app = make_app(SMSCODE_STORAGE_URI=proxy.url, SMSCODE_STORAGE_MIN_REPLICAS=1, **FAST)
    client = app.test_client()
    assert send(client).status_code == 200
    code = code_of(sms_server, "13800138000")
    # Warm-up: the check script cached in Redis (else the lost call was a NOSCRIPT).
    assert verify(client, "000000", phone="13900139000").status_code == 400
    with proxy.losing_replies():
        lost = verify(client, code)
        assert lost.status_code == 503 and error_of(lost) == "storage_unavailable"
        fields = phone_hash(app, master_admin)
        assert "c:login" not in fields and "u:login" in fields  # consumed, under its id
    retried = verify(client, code)
    assert retried.status_code == 200, retried.get_json()
    assert "token" in retried.get_json()
    again = verify(client, code)
    assert again.status_code == 400  # used: it does not come back


@pytest.mark.redis
def test_a_restore_by_id_never_brings_back_a_code_another_verify_was_answered_for(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    pair: tuple[RedisServer, RedisServer],
    master_admin: Any,
    proxy: RedisProxy,
) -> None:
    """A verify that lost its reply undoes only its own consume: when the consume that stands
    is another verify's (answered 200), the deferred restore finds another id and does
    nothing — in the background, with no request of this process to settle it."""
    app = make_app(SMSCODE_STORAGE_URI=proxy.url, SMSCODE_STORAGE_MIN_REPLICAS=1, **FAST)
    client = app.test_client()
    assert send(client).status_code == 200
    code = code_of(sms_server, "13800138000")
    proxy.mode("reset_before")  # this verify never reaches Redis
    assert verify(client, code).status_code == 503
    proxy.mode("pass")
    store = app.extensions["smscode"].store
    assert store.pending_undos() == 1
    # Another process (its own store) verifies the code: answered 200.
    other = make_app(
        SMSCODE_STORAGE_URI=pair[0].url,
        SMSCODE_STORAGE_MIN_REPLICAS=1,
        SMSCODE_KEY_PREFIX=app.config["SMSCODE_KEY_PREFIX"],
    )
    assert verify(other.test_client(), code).status_code == 200
    wait_until(lambda: store.pending_undos() == 0, 5, "the deferred restore to run")
    assert "c:login" not in phone_hash(app, master_admin)  # not brought back
    assert verify(client, code).status_code == 400


@pytest.mark.redis
def test_undos_waiting_are_bounded_and_the_overflow_is_counted(
    make_app: Callable[..., Flask],
    sms_server: DysmsapiServer,
    proxy: RedisProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A long outage under traffic leaves an undo per failed send: past
    MAX_PENDING_UNDOS a new one is given up at once (counted in undo_failures), so memory
    and the background pass stay bounded; the ones kept still get through afterwards."""
    monkeypatch.setattr(redis_store, "MAX_PENDING_UNDOS", 2)
    app = make_app(SMSCODE_STORAGE_URI=proxy.url, **FAST)
    client = app.test_client()
    assert send(client, "13900139000").status_code == 200  # warm-up: clock and scripts
    store = app.extensions["smscode"].store
    proxy.mode("reset_before")
    for phone in ("13800138001", "13800138002", "13800138003"):
        assert send(client, phone).status_code == 503
    assert store.pending_undos() == 2 and store.undo_failures == 1
    proxy.mode("pass")
    wait_until(lambda: store.pending_undos() == 0, 5, "the kept undos to get through")
    assert store.undo_failures == 1
    assert send(client, "13800138001").status_code == 200  # nothing was reserved: no 429
