"""A real Redis Sentinel set on loopback: one master, one replica, three sentinels.

Timeouts are cut (down-after 1 s, failover-timeout 5 s) so a failover completes in seconds.
Nothing is persisted; the sentinels' generated ``sentinel.conf`` files (Sentinel rewrites
its config) live in a temp dir with the servers' logs.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis

from tests.servers.redis_cluster import wait_until
from tests.servers.redis_server import free_port

SERVICE = "mymaster"


def _redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    return binary


class RedisSentinelSet:
    """Master + replica + three sentinels quorum 2. ``uri`` is for ``SMSCODE_STORAGE_URI``."""

    def __init__(
        self, service: str = SERVICE, down_after_ms: int = 1000, failover_timeout_ms: int = 5000
    ) -> None:
        self.service = service
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.root = Path(tempfile.mkdtemp(prefix="smscode-sentinel-"))
        self.data_ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}
        self.startup_seconds = 0.0

    @property
    def uri(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.service}"

    # -- clients ---------------------------------------------------------------------------

    def data_client(self, port: int) -> redis.Redis:
        return redis.Redis(
            port=port, socket_timeout=5, socket_connect_timeout=1, decode_responses=True
        )

    def sentinel_client(self, port: int) -> redis.Redis:
        return redis.Redis(
            port=port, socket_timeout=5, socket_connect_timeout=1, decode_responses=True
        )

    def master_port(self) -> int:
        """The master's port as the first sentinel reports it."""
        with self.sentinel_client(self.sentinel_ports[0]) as client:
            _host, port = client.execute_command("SENTINEL GET-MASTER-ADDR-BY-NAME", self.service)
        return int(port)

    def master(self) -> redis.Redis:
        """A plain client on the current master (for checks from the test side)."""
        return self.data_client(self.master_port())

    # -- life cycle ------------------------------------------------------------------------

    def _spawn(self, port: int, args: list[str]) -> None:
        self.processes[port] = subprocess.Popen(
            [_redis_server(), *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def _wait_ping(self, port: int) -> None:
        def up() -> bool:
            if self.processes[port].poll() is not None:
                raise RuntimeError(f"redis on port {port} exited; see logs in {self.root}")
            with self.data_client(port) as client:
                return bool(client.ping())

        wait_until(up, 10, f"redis on port {port} to answer PING")

    def start(self) -> RedisSentinelSet:
        try:
            return self._start()
        except BaseException:
            self.cleanup()
            raise

    def _start(self) -> RedisSentinelSet:
        started = time.monotonic()
        master, replica = self.data_ports
        for port in self.data_ports:
            extra = ["--replicaof", "127.0.0.1", str(master)] if port == replica else []
            self._spawn(
                port,
                [
                    "--port",
                    str(port),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--repl-diskless-sync-delay",
                    "0",
                    "--dir",
                    str(self.root),
                    "--logfile",
                    str(self.root / f"redis-{port}.log"),
                    *extra,
                ],
            )
        for port in self.data_ports:
            self._wait_ping(port)
        with self.data_client(replica) as client:
            wait_until(
                lambda: client.info("replication").get("master_link_status") == "up",
                20,
                "the replica to sync",
            )
        for port in self.sentinel_ports:
            conf = self.root / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.root}\n"
                f"logfile {self.root / f'sentinel-{port}.log'}\n"
                f"sentinel monitor {self.service} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.service} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.service} 1\n",
                encoding="utf-8",
            )
            self._spawn(port, [str(conf), "--sentinel"])
        for port in self.sentinel_ports:
            self._wait_ping(port)
        self.wait_settled(master)
        self.startup_seconds = time.monotonic() - started
        return self

    def _sentinel_view(self, port: int) -> dict[str, Any]:
        with self.sentinel_client(port) as client:
            view = client.execute_command("SENTINEL MASTER", self.service)
        if isinstance(view, list):  # RESP2 flat list when no callback parsed it
            view = dict(zip(view[::2], view[1::2], strict=True))
        return {str(k): v for k, v in view.items()}

    def wait_settled(self, master: int, timeout: float = 30) -> None:
        """Until every sentinel names ``master``, sees one replica and the two other sentinels,
        and the master accepts a write."""

        def settled() -> bool:
            for port in self.sentinel_ports:
                view = self._sentinel_view(port)
                if int(view["port"]) != master or "s_down" in str(view["flags"]):
                    return False
                if int(view["num-slaves"]) < 1 or int(view["num-other-sentinels"]) < 2:
                    return False
            with self.data_client(master) as client:
                return bool(client.set("smscode-sentinel-probe", "1", px=1000))

        wait_until(settled, timeout, f"all sentinels to agree on master {master}", 0.1)

    def failover(self, timeout: float = 30) -> int:
        """SENTINEL FAILOVER, then wait until every sentinel reports the new master, it takes
        writes, and the old master follows it as a synced replica. Return the new port."""
        old, new = self.start_failover(timeout)
        self.wait_old_master_follows(old, new, timeout)
        return new

    def start_failover(self, timeout: float = 30) -> tuple[int, int]:
        """SENTINEL FAILOVER; return (old, new) once every sentinel names the new master and
        it takes writes. The old master still runs as a master until Sentinel reconfigures
        it (its INFO period, about 10 s): see :meth:`wait_old_master_follows`."""
        old = self.master_port()
        with self.sentinel_client(self.sentinel_ports[0]) as client:
            client.execute_command("SENTINEL FAILOVER", self.service)
        new = next(port for port in self.data_ports if port != old)
        self.wait_settled(new, timeout)
        return old, new

    def wait_old_master_follows(self, old: int, new: int, timeout: float = 30) -> None:
        with self.data_client(old) as client:
            wait_until(
                lambda: (
                    client.info("replication").get("master_link_status") == "up"
                    and int(client.info("replication")["master_port"]) == new
                ),
                timeout,
                f"old master {old} to follow {new}",
                0.1,
            )
        self.wait_settled(new, timeout)  # the sentinels' view of the replica is fresh too

    def clear_prefix(self, prefix: str) -> None:
        """Delete the keys under ``prefix`` on the master (tests share the set)."""
        try:
            with self.master() as client:
                keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
                if keys:
                    client.delete(*keys)
        except redis.RedisError:
            pass

    def cleanup(self) -> None:
        # sentinels first, so they do not fail over a master that is merely shutting down
        for port in [*self.sentinel_ports, *self.data_ports]:
            process = self.processes.pop(port, None)
            if process is None or process.poll() is not None:
                continue
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> RedisSentinelSet:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.cleanup()
