"""A real Redis Cluster on loopback for the suite: three masters, optionally one replica each.

Built by hand (CLUSTER ADDSLOTSRANGE / SET-CONFIG-EPOCH / MEET / REPLICATE) rather than with
``redis-cli --cluster create``, whose fixed one-second waits would triple the start-up time.
Nodes keep nothing on disk except the ``nodes.conf`` Redis insists on, in a temp dir.
The helpers move a slot and fail a master over the way an operator would, so tests can
watch the app ride through MOVED/ASK redirections and a topology change.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

#: redis-server refuses ``--cluster-enabled`` when port + 10000 (the bus) exceeds 65535.
MAX_CLUSTER_PORT = 55535
SLOTS = 16384


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_cluster_port(taken: set[int] | None = None) -> int:
    """A loopback port P < 55535 with P and its bus port P + 10000 both free."""
    taken = taken or set()
    for _ in range(1000):
        port = random.randrange(20000, 45000)
        if port in taken or port + 10000 in taken:
            continue
        if _port_is_free(port) and _port_is_free(port + 10000):
            return port
    raise RuntimeError("no free port pair for a cluster node")


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.05
) -> None:
    """Poll ``predicate`` (Redis errors count as "not yet") until true or ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class ClusterNode:
    """One cluster-enabled ``redis-server`` process."""

    def __init__(self, port: int, root: Path, node_timeout_ms: int) -> None:
        self.port = port
        self.dir = root / str(port)
        self.dir.mkdir()
        self.node_timeout_ms = node_timeout_ms
        self.process: subprocess.Popen[bytes] | None = None
        self.client = redis.Redis(
            port=port, socket_timeout=5, socket_connect_timeout=1, decode_responses=True
        )

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(self.dir / "nodes.conf"),
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--cluster-allow-replica-migration",
                "no",
                "--repl-diskless-sync-delay",
                "0",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait_ready(self) -> None:
        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"cluster node on port {self.port} exited; see {self.dir}/log")
            return bool(self.client.ping())

        wait_until(up, 10, f"cluster node {self.port} to answer PING")

    def node_id(self) -> str:
        return str(self.client.execute_command("CLUSTER MYID"))

    def info(self) -> dict[str, str]:
        """CLUSTER INFO (redis-py parses it into a dict)."""
        return {str(k): str(v) for k, v in self.client.execute_command("CLUSTER INFO").items()}

    def role(self) -> str:
        return str(self.client.info("replication")["role"])

    def kill(self) -> None:
        """SIGKILL: a crash, nothing handed over."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        self.client.close()

    def stop(self) -> None:
        self.client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None


class RedisCluster:
    """A three-master Redis Cluster on 127.0.0.1; ``replicas=True`` adds one replica per master.

    ``uri`` is what ``SMSCODE_STORAGE_URI`` takes. Use :meth:`cleanup` (or ``with``) to stop it.
    """

    def __init__(
        self, masters: int = 3, replicas: bool = False, node_timeout_ms: int = 3000
    ) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="smscode-cluster-"))
        taken: set[int] = set()
        self.nodes: list[ClusterNode] = []
        for _ in range(masters * (2 if replicas else 1)):
            port = free_cluster_port(taken)
            taken |= {port, port + 10000}
            self.nodes.append(ClusterNode(port, self.root, node_timeout_ms))
        self.master_count = masters
        self.startup_seconds = 0.0

    # -- addresses -------------------------------------------------------------------------

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def seed_ports(self) -> list[int]:
        """The ports of the nodes that started as masters (the URI's seed list)."""
        return self.ports[: self.master_count]

    @property
    def uri(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.seed_ports)

    def node(self, port: int) -> ClusterNode:
        return next(node for node in self.nodes if node.port == port)

    def client(self) -> redis.RedisCluster:
        """A plain redis-py cluster client (decoded responses) for checks from the test side."""
        return redis.RedisCluster(
            host="127.0.0.1", port=self.live().port, decode_responses=True, socket_timeout=5
        )

    # -- life cycle ------------------------------------------------------------------------

    def start(self) -> RedisCluster:
        try:
            return self._start()
        except BaseException:
            self.cleanup()
            raise

    def _start(self) -> RedisCluster:
        started = time.monotonic()
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_ready()
        masters = self.nodes[: self.master_count]
        per_master = SLOTS // self.master_count
        for index, node in enumerate(masters):
            first = index * per_master
            last = SLOTS - 1 if index == len(masters) - 1 else first + per_master - 1
            node.client.execute_command("CLUSTER ADDSLOTSRANGE", first, last)
            # distinct epochs up front: no epoch-collision round before the cluster settles
            node.client.execute_command("CLUSTER SET-CONFIG-EPOCH", index + 1)
        for node in self.nodes[1:]:
            self.nodes[0].client.execute_command("CLUSTER MEET", "127.0.0.1", node.port)
        total = len(self.nodes)
        wait_until(
            lambda: all(len(self._known(n)) == total for n in self.nodes),
            20,
            "every node to know every other node",
        )
        for master, replica in zip(masters, self.nodes[self.master_count :], strict=False):
            master_id = master.node_id()
            replica.client.execute_command("CLUSTER REPLICATE", master_id)
        for replica in self.nodes[self.master_count :]:
            wait_until(
                lambda r=replica: r.client.info("replication").get("master_link_status") == "up",
                20,
                f"replica {replica.port} to sync",
            )
        self.wait_stable()
        self.startup_seconds = time.monotonic() - started
        return self

    def _known(self, node: ClusterNode) -> dict[str, Any]:
        """CLUSTER NODES as redis-py parses it: address -> node description."""
        return dict(node.client.execute_command("CLUSTER NODES"))

    def wait_stable(self, timeout: float = 20) -> None:
        """Until every running node says ``cluster_state:ok`` and all agree on who owns what."""
        running = [n for n in self.nodes if n.process is not None]

        def stable() -> bool:
            if any(n.info()["cluster_state"] != "ok" for n in running):
                return False
            views = [self._ownership(n) for n in running]
            return all(view == views[0] for view in views)

        wait_until(stable, timeout, "cluster_state:ok and one view of slot ownership")

    def _ownership(self, node: ClusterNode) -> list[tuple[int, int, int]]:
        return sorted(
            (int(first), int(last), int(master[1]))
            for first, last, master, *_ in node.client.execute_command("CLUSTER SLOTS")
        )

    def masters(self) -> list[ClusterNode]:
        return [n for n in self.nodes if n.process is not None and n.role() == "master"]

    def live(self) -> ClusterNode:
        """A running node to ask (the first seed may be the one a test killed)."""
        return next(node for node in self.nodes if node.process is not None)

    def owner_of(self, slot: int) -> ClusterNode:
        for first, last, master, *_ in self.live().client.execute_command("CLUSTER SLOTS"):
            if int(first) <= slot <= int(last):
                return self.node(int(master[1]))
        raise LookupError(f"slot {slot} is not served")

    def keyslot(self, key: str) -> int:
        return int(self.live().client.execute_command("CLUSTER KEYSLOT", key))

    # -- operations ------------------------------------------------------------------------

    def begin_migration(self, slot: int, target: ClusterNode) -> ClusterNode:
        """Mark ``slot`` IMPORTING on ``target`` and MIGRATING on its owner (ASK phase)."""
        source = self.owner_of(slot)
        if source is target:
            raise ValueError(f"slot {slot} already lives on {target.port}")
        target.client.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source.node_id())
        source.client.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target.node_id())
        return source

    def move_keys(
        self, slot: int, source: ClusterNode, target: ClusterNode, batch: int = 100
    ) -> int:
        """MIGRATE every key of ``slot`` from ``source`` to ``target``; return how many."""
        moved = 0
        while True:
            keys = source.client.execute_command("CLUSTER GETKEYSINSLOT", slot, batch)
            if not keys:
                return moved
            source.client.execute_command(
                "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "REPLACE", "KEYS", *keys
            )
            moved += len(keys)

    def finish_migration(self, slot: int, target: ClusterNode) -> None:
        """Hand ``slot`` to ``target`` on every master (the target first, as redis-cli does)."""
        target_id = target.node_id()
        target.client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        for node in self.masters():
            if node is not target:
                node.client.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        wait_until(lambda: self.owner_of(slot) is target, 10, f"slot {slot} to move")
        self.wait_stable()

    def migrate_slot(self, slot: int, target: ClusterNode, pause_seconds: float = 0.0) -> int:
        """Move ``slot`` to ``target`` with its keys; ``pause_seconds`` holds the ASK phase
        open (keys half moved) so traffic meets it. Return how many keys moved."""
        source = self.begin_migration(slot, target)
        keys = source.client.execute_command("CLUSTER GETKEYSINSLOT", slot, 1000)
        half = keys[: len(keys) // 2]
        if half:
            source.client.execute_command(
                "MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "REPLACE", "KEYS", *half
            )
        time.sleep(pause_seconds)
        moved = len(half) + self.move_keys(slot, source, target)
        self.finish_migration(slot, target)
        return moved

    def replica_of(self, master: ClusterNode) -> ClusterNode:
        master_id = master.node_id()
        for node in self.nodes:
            if node is master or node.process is None:
                continue
            info = node.client.info("replication")
            if info["role"] == "slave" and int(info["master_port"]) == master.port:
                return node
        raise LookupError(f"master {master.port} ({master_id}) has no replica")

    def failover(self, master: ClusterNode, timeout: float = 20) -> ClusterNode:
        """CLUSTER FAILOVER on ``master``'s replica; wait until every node agrees and the old
        master has become a synced replica. Return the new master."""
        replica = self.replica_of(master)
        replica.client.execute_command("CLUSTER FAILOVER")
        wait_until(lambda: replica.role() == "master", timeout, f"{replica.port} to take over")
        wait_until(
            lambda: master.client.info("replication").get("master_link_status") == "up",
            timeout,
            f"old master {master.port} to follow {replica.port}",
        )
        self.wait_stable(timeout)
        return replica

    def crash_and_promote(self, master: ClusterNode, timeout: float = 20) -> ClusterNode:
        """SIGKILL ``master`` (a crash: no hand-over), then CLUSTER FAILOVER FORCE on its
        replica, as an operator would rather than wait out the node timeout. Wait until the
        survivors agree on the new owner. Return the new master; :meth:`restart` brings the
        dead node back (it rejoins as a replica)."""
        replica = self.replica_of(master)
        master.kill()
        replica.client.execute_command("CLUSTER FAILOVER", "FORCE")
        wait_until(lambda: replica.role() == "master", timeout, f"{replica.port} to take over")
        self.wait_stable(timeout)
        return replica

    def restart(self, node: ClusterNode, timeout: float = 20) -> None:
        """Start a stopped node again on its port and ``nodes.conf``; wait until it syncs."""
        node.start()
        node.wait_ready()
        wait_until(
            lambda: (
                node.role() == "slave"
                and node.client.info("replication").get("master_link_status") == "up"
            ),
            timeout,
            f"node {node.port} to rejoin as a replica",
        )
        self.wait_stable(timeout)

    def clear_prefix(self, prefix: str) -> None:
        """Delete the keys under ``prefix`` on every master (tests share the cluster)."""
        for node in self.masters():
            keys = list(node.client.scan_iter(match=f"{prefix}*", count=1000))
            for key in keys:  # one by one: keys of one call may sit in different slots
                try:
                    node.client.delete(key)
                except redis.ResponseError:  # moved away meanwhile (a migration test)
                    pass

    def cleanup(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RedisCluster:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()
