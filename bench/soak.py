"""The soak: real gunicorn with threads in front of a Redis Sentinel set or Redis Cluster,
virtual users doing send → read the code → verify, and a fault once a minute — with the
figures that say whether a user lost anything.

``bash scripts/bench.sh soak`` (``python -m bench.soak``; ``--topology sentinel|cluster|both``,
``--duration 120`` seconds per topology, ``--fault-every 60``, ``--faults kill,stall,restart``,
``--users 24``, ``--workers 4 --threads 4``, ``--setting KEY=VALUE``, ``--results
bench/RESULTS.md``). Exits non-zero when an anomaly count is not zero.

**Set-up**, all on 127.0.0.1, all started and stopped here:

- Sentinel: 1 master, 1 replica, 3 sentinels (quorum 2), ``down-after-milliseconds`` 5000 —
  short, yet longer than the 4 s stall, so a stall stays a stall and is not turned into a
  failover. Cluster: 3 masters with 1 replica each, ``cluster-node-timeout`` 5000 for the
  same reason (tests/servers/redis_sentinel.py, tests/servers/redis_cluster.py).
- The loopback Dysmsapi server (tests/servers/dysmsapi_server.py), which checks every
  signature and records every SendSms: a virtual user reads its code there, as a person
  reads the SMS.
- ``bench/app.py``'s app (the package's blueprint, bench/settings.py's production-like
  settings) under **gunicorn gthread, 4 workers × 4 threads** by default (the run of
  issue 14; ``--workers 2`` suits a 2-core machine better), with
  ``SMSCODE_STORAGE_TIMEOUT_SECONDS=1``.

**Virtual users** (threads of this process, keep-alive ``http.client`` connections): each
loop takes a phone number never used before, sends, reads the code from the loopback server,
verifies it, then verifies the same code once more (it must not verify twice). A 503 on a
send is retried after 0.2 s with the *same* phone; a 503 on a verify with the same code.

**Why a 429 after a 503 means a burned cooldown**: ``SMSCODE_RESEND_INTERVAL_SECONDS`` keeps
its default of 60 s and every send goes to a fresh number, so the only time a number is sent
to twice is the retry after a 503 — a send answered 503 must leave no cooldown behind, and
the retry must not be throttled. (The per-phone hourly limits are never reached either.)

**Faults**, once every ``--fault-every`` seconds (the first half a period in), cycling
through ``--faults`` — the cycle carries on across topologies, so the default by-hand run
(``--duration 120``, both topologies) gives Sentinel a kill and a stall, and Cluster a worker
restart and a kill:

- ``kill``: ``kill -9`` of the current master. Sentinel fails over by itself (down-after
  5 s); Cluster's replica is promoted at once (``CLUSTER FAILOVER FORCE``, as an operator
  would). The dead node is then restarted and rejoins as a replica.
- ``stall``: ``SIGSTOP`` of the master (Cluster: the next master in turn) for 4 s, then
  ``SIGCONT``.
- ``restart``: ``SIGTERM`` to one gunicorn worker (graceful); the arbiter forks a new one.

A request that dies with its connection (no HTTP answer; a worker restart closes kept-alive
connections) is sent again on a new connection; it is counted under "connection errors
retried", not as an answer.

**Two clocks**: the users' latencies (p99, slowest answer) run from sending the request to
reading the answer, so they include the wait for a free gunicorn thread — in a stall every
thread of a worker is busy for up to the storage timeout, and the users queued behind them
wait several of those. gunicorn's own request time (its access log) is the server-side
figure the stall bound is about: each request within the storage timeout plus the stated
margin; one over :data:`SERVER_BOUND_SECONDS` is an anomaly.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.results import write_sections
from tests.servers.dysmsapi_server import DysmsapiServer, SentSms, normalize_phone
from tests.servers.gunicorn_app import GunicornApp
from tests.servers.redis_cluster import ClusterNode, RedisCluster, wait_until
from tests.servers.redis_sentinel import RedisSentinelSet
from tests.servers.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
TOPOLOGIES = ("sentinel", "cluster")
FAULTS = ("kill", "stall", "restart")
DOWN_AFTER_MS = 5000  # Sentinel: > STALL_SECONDS, so a stall is not a failover
NODE_TIMEOUT_MS = 5000  # Cluster: the same
STALL_SECONDS = 4.0
RETRY_PAUSE_SECONDS = 0.2  # before a 503 is retried (the same phone, the same code)
#: The stall bound a request must keep server-side: the storage timeout (SETTINGS) plus the
#: store's stated margin (flask_smscode.stores.redis.STALL_MARGIN_SECONDS, 0.25 s), plus
#: 0.25 s for a 2-core machine that also runs Redis, the sentinels and the users. gunicorn's
#: own request time (its access log, %(D)s) is what is held to it: a user's answer also
#: waits for a free gunicorn thread, which no storage timeout can bound.
SERVER_BOUND_SECONDS = 1.5
GIVE_UP_AFTER_STOP_SECONDS = 20.0  # a user still retrying a 503 when the run ends
SETTINGS: dict[str, Any] = {
    "SMSCODE_STORAGE_TIMEOUT_SECONDS": 1,
    # The default, stated: a second send to one number within 60 s is throttled, and the
    # only second send this soak makes is a retry after a 503.
    "SMSCODE_RESEND_INTERVAL_SECONDS": 60,
}
# Mainland number blocks, one per topology, so two topologies' numbers never meet.
NUMBER_BLOCKS = {"sentinel": "139", "cluster": "137"}


# ------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Answer:
    """One HTTP exchange. ``status`` 0: the connection died without an answer."""

    op: str  # "send", "verify" (the code's verifies) or "reverify" (the used code again)
    status: int
    error: str | None
    started: float  # time.monotonic()
    wall: float  # time.time() at the start, to match the loopback server's SMS records
    seconds: float

    @property
    def ended_wall(self) -> float:
        return self.wall + self.seconds


@dataclass
class Fault:
    kind: str
    what: str  # which node or worker, for the report
    at: float  # monotonic, when it was injected
    recovered: float = 0.0  # monotonic: the topology serves again (before any restart)
    done: float = 0.0  # monotonic: the dead node is back too

    def label(self, origin: float) -> str:
        return f"{self.kind} {self.what} @{self.at - origin:.0f}s"


@dataclass
class Tally:
    """What the virtual users saw (updated under the run's lock)."""

    answers: list[Answer] = field(default_factory=list)
    # phone -> its send attempts, in order (to match the SMS the server recorded)
    sends: dict[str, list[Answer]] = field(default_factory=lambda: defaultdict(list))
    accepted: int = 0  # sends answered 200
    lost_codes: int = 0  # 200 send, then code_expired / invalid_code on its first verify
    came_back: int = 0  # a used code that verified again
    burned: int = 0  # a send retried after a 503 that got 429
    unexpected: Counter[str] = field(default_factory=Counter)  # other answers, by kind
    transport_retries: int = 0
    unsure: int = 0  # a verify whose first answer was lost with its connection
    verified: int = 0


# ------------------------------------------------------------------------- pieces


class SmsIndex:
    """The loopback server's ``sent`` list indexed by phone, read incrementally: its own
    ``last_code`` scans the whole list, which is quadratic over a soak's 10,000s of SMS."""

    def __init__(self, server: DysmsapiServer) -> None:
        self.server = server
        self._seen = 0
        self._by_phone: dict[str, list[SentSms]] = defaultdict(list)
        self._lock = threading.Lock()

    def messages(self, phone: str) -> list[SentSms]:
        with self._lock:
            new = self.server.sent[self._seen :]  # append-only: a slice is a safe read
            self._seen += len(new)
            for message in new:
                for number in message.phones:
                    self._by_phone[number].append(message)
            return list(self._by_phone.get(normalize_phone(phone), ()))

    def total(self) -> int:
        return len(self.server.sent)


class Client:
    """A kept-alive HTTP/1.1 connection to gunicorn, opened again after it dies."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: dict[str, str]) -> tuple[int, str | None]:
        """(status, JSON ``error``); (0, None) when the connection died unanswered."""
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=15)
        try:
            self._conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = self._conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, None
        if response.will_close:
            self.close()
        error = None
        if "json" in (response.getheader("Content-Type") or ""):
            with contextlib.suppress(ValueError):
                payload = json.loads(raw)
                error = payload.get("error") if isinstance(payload, dict) else None
        return response.status, error

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _gunicorn(
    tmp: Path, redis_uri: str, prefix: str, provider: str, workers: int, threads: int,
    settings: dict[str, Any],
) -> GunicornApp:  # fmt: skip
    """bench/app.py's package app under gunicorn gthread, answering."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", "gthread",
        "--threads", str(threads),
        "--graceful-timeout", "3",
        "--worker-tmp-dir", str(tmp),
        # gunicorn's request time in µs, per request: the server-side figure of the stall
        # bound (see SERVER_BOUND_SECONDS); method, path and worker pid beside it.
        "--access-logfile", str(tmp / "access.log"),
        "--access-logformat", "%(s)s %(D)s %(m)s %(U)s %(p)s",
        "bench.app:create_app()",
    ]  # fmt: skip
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMSCODE_", "FLASK_", "GUNICORN_", "BENCH_"))
    }
    env.update(
        BENCH_REDIS_URL=redis_uri,
        BENCH_PREFIX=prefix,
        BENCH_PROVIDER=provider,
        BENCH_EXTRA=json.dumps(settings),
        PYTHONPATH=str(ROOT),
    )
    app = GunicornApp(command, f"http://127.0.0.1:{port}", env)

    def answers() -> bool:
        if app.process.poll() is not None:
            raise RuntimeError(f"gunicorn exited:\n{app.output[-4000:]}")
        client = Client("127.0.0.1", port)
        try:
            return client.post("/sms/send", {"phone": "not-a-phone"})[0] == 400
        finally:
            client.close()

    try:
        wait_until(answers, 30, "gunicorn to answer", 0.2)
        app.wait_for_workers(workers)
    except BaseException:
        app.stop()
        raise
    return app


class Topology:
    """One Redis topology with the two Redis faults; ``close`` stops it."""

    name = ""
    description = ""
    uri = ""

    def kill(self) -> Fault:
        raise NotImplementedError

    def stall(self, seconds: float) -> Fault:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class SentinelTopology(Topology):
    name = "sentinel"
    description = (
        f"Sentinel: 1 master + 1 replica, 3 sentinels (quorum 2), down-after {DOWN_AFTER_MS} ms"
    )

    def __init__(self) -> None:
        self.sentinels = RedisSentinelSet(down_after_ms=DOWN_AFTER_MS, failover_timeout_ms=10_000)
        self.sentinels.start()
        self.uri = self.sentinels.uri

    def kill(self) -> Fault:
        old = self.sentinels.master_port()
        new = next(port for port in self.sentinels.data_ports if port != old)
        fault = Fault("kill", f"master :{old}", time.monotonic())
        process = self.sentinels.processes.pop(old)
        process.kill()
        process.wait(timeout=10)
        self.sentinels.wait_settled(new, timeout=60)  # the sentinels promoted the replica
        fault.recovered = time.monotonic()
        # Back as a replica of the new master (no persistence: it resyncs from scratch).
        self.sentinels.processes[old] = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(old), "--bind", "127.0.0.1", "--save", ""),
                *("--appendonly", "no", "--repl-diskless-sync-delay", "0"),
                *("--dir", str(self.sentinels.root)),
                *("--logfile", str(self.sentinels.root / f"redis-{old}.log")),
                *("--replicaof", "127.0.0.1", str(new)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.sentinels.wait_old_master_follows(old, new, timeout=60)
        fault.done = time.monotonic()
        return fault

    def stall(self, seconds: float) -> Fault:
        port = self.sentinels.master_port()
        fault = Fault("stall", f"master :{port} {seconds:.0f}s", time.monotonic())
        _stall(self.sentinels.processes[port].pid, seconds)
        fault.recovered = fault.done = time.monotonic()
        return fault

    def close(self) -> None:
        self.sentinels.cleanup()


class ClusterTopology(Topology):
    name = "cluster"
    description = f"Cluster: 3 masters + 1 replica each, cluster-node-timeout {NODE_TIMEOUT_MS} ms"

    def __init__(self) -> None:
        self.cluster = RedisCluster(masters=3, replicas=True, node_timeout_ms=NODE_TIMEOUT_MS)
        self.cluster.start()
        self.uri = self.cluster.uri
        self._turn = itertools.count()

    def _next_master(self) -> ClusterNode:
        masters = sorted(self.cluster.masters(), key=lambda node: node.port)
        return masters[next(self._turn) % len(masters)]

    def kill(self) -> Fault:
        master = self._next_master()
        fault = Fault("kill", f"master :{master.port}", time.monotonic())
        self.cluster.crash_and_promote(master, timeout=60)
        fault.recovered = time.monotonic()
        self.cluster.restart(master, timeout=60)
        fault.done = time.monotonic()
        return fault

    def stall(self, seconds: float) -> Fault:
        master = self._next_master()
        assert master.process is not None
        fault = Fault("stall", f"master :{master.port} {seconds:.0f}s", time.monotonic())
        _stall(master.process.pid, seconds)
        fault.recovered = fault.done = time.monotonic()
        return fault

    def close(self) -> None:
        self.cluster.cleanup()


def _stall(pid: int, seconds: float) -> None:
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def _restart_worker(app: GunicornApp, workers: int) -> Fault:
    old = app.workers()
    victim = old[0]
    fault = Fault("restart", f"worker {victim}", time.monotonic())
    os.kill(victim, signal.SIGTERM)
    wait_until(
        lambda: victim not in app.workers() and len(app.workers()) == workers,
        30,
        "gunicorn to replace the worker",
    )
    fault.recovered = fault.done = time.monotonic()
    return fault


# ------------------------------------------------------------------------- users


class Users:
    """The virtual users: threads looping send → code → verify → verify again."""

    def __init__(self, app_port: int, sms: SmsIndex, block: str, count: int) -> None:
        self.port = app_port
        self.sms = sms
        self.block = block
        self.tally = Tally()
        self._lock = threading.Lock()
        self._numbers = itertools.count()
        self._stop = threading.Event()
        self._stopped_at = float("inf")
        self.errors: list[BaseException] = []
        self._threads = [
            threading.Thread(target=self._run, name=f"soak-user-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopped_at = time.monotonic()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=GIVE_UP_AFTER_STOP_SECONDS + 30)
        if any(thread.is_alive() for thread in self._threads):
            raise RuntimeError("a virtual user hangs")
        if self.errors:
            raise self.errors[0]

    def _giving_up(self) -> bool:
        return time.monotonic() - self._stopped_at > GIVE_UP_AFTER_STOP_SECONDS

    def _phone(self) -> str:
        with self._lock:
            number = next(self._numbers)
        return f"{self.block}{number:08d}"

    def _call(
        self, client: Client, op: str, body: dict[str, str], phone: str
    ) -> tuple[Answer, bool]:
        """POST until an HTTP answer comes (connection deaths resent at once); the answer
        and whether a connection died on the way."""
        died = False
        while True:
            wall, started = time.time(), time.monotonic()
            status, error = client.post(f"/sms/{'send' if op == 'send' else 'verify'}", body)
            answer = Answer(op, status, error, started, wall, time.monotonic() - started)
            if status:
                with self._lock:
                    self.tally.answers.append(answer)
                    if op == "send":
                        self.tally.sends[phone].append(answer)
                return answer, died
            died = True
            with self._lock:
                self.tally.transport_retries += 1
            if op == "send" and any(
                m.send_date.timestamp() >= wall for m in self.sms.messages(phone)
            ):
                # The send went through but its answer died with the connection: it is
                # accepted (its SMS is there). Not seen with graceful restarts; counted.
                accepted = Answer(op, 200, "answer_lost", started, wall, answer.seconds)
                with self._lock:
                    self.tally.sends[phone].append(accepted)
                return accepted, died
            if self._giving_up():
                return answer, died
            time.sleep(0.05)

    def _run(self) -> None:
        client = Client("127.0.0.1", self.port)
        try:
            while not self._stop.is_set():
                self._one_user_turn(client)
        except BaseException as exc:  # surfaced by stop()
            self.errors.append(exc)
        finally:
            client.close()

    def _retrying(
        self, client: Client, op: str, body: dict[str, str], phone: str
    ) -> Iterator[tuple[Answer, bool, bool]]:
        """Each answer of one logical request retried while it answers 503:
        (answer, a connection died before it, it follows a 503)."""
        after_503 = False
        while True:
            answer, died = self._call(client, op, body, phone)
            yield answer, died, after_503
            if answer.status != 503 or self._giving_up():
                return
            if answer.error != "storage_unavailable":
                return
            after_503 = True
            time.sleep(RETRY_PAUSE_SECONDS)

    def _other(self, answer: Answer) -> None:
        """An answer no step expects. A 503 storage_unavailable is retried and a 0 is a
        give-up at the end of the run (neither is news); another 5xx is counted from the
        answers as "other 5xx"; anything else is an unexpected answer."""
        if answer.status in (0, 503) and answer.error in (None, "storage_unavailable"):
            return
        if answer.status >= 500:
            return
        with self._lock:
            self.tally.unexpected[f"{answer.op} {answer.status} {answer.error}"] += 1

    def _one_user_turn(self, client: Client) -> None:
        phone = self._phone()
        # 1. send, retried with the same phone while it answers 503
        sent = False
        for answer, _died, after_503 in self._retrying(client, "send", {"phone": phone}, phone):
            if answer.status == 200:
                sent = True
            elif answer.status == 429 and answer.error == "throttled" and after_503:
                with self._lock:
                    self.tally.burned += 1
            else:
                self._other(answer)
        if not sent:
            return
        with self._lock:
            self.tally.accepted += 1
        messages = self.sms.messages(phone)
        if not messages or messages[-1].code is None:
            with self._lock:
                self.tally.unexpected["send 200 without an SMS"] += 1
            return
        code = messages[-1].code
        body = {"phone": phone, "code": code, "purpose": "login"}
        # 2. verify, retried with the same code while it answers 503
        verified = died = False
        for answer, died_now, _after in self._retrying(client, "verify", body, phone):
            died = died or died_now
            if answer.status == 200:
                verified = True
            elif answer.status == 400 and answer.error in ("code_expired", "invalid_code"):
                with self._lock:
                    if died:  # an attempt whose answer died may have used the code
                        self.tally.unsure += 1
                    else:
                        self.tally.lost_codes += 1
            else:
                self._other(answer)
        if not verified:
            return
        with self._lock:
            self.tally.verified += 1
        # 3. the used code once more: it must not verify again (any 400 is right)
        for answer, _died, _after in self._retrying(client, "reverify", body, phone):
            if answer.status == 200:
                with self._lock:
                    self.tally.came_back += 1
            elif answer.status != 400:
                self._other(answer)


# ------------------------------------------------------------------------- report


def _latency(seconds: list[float]) -> str:
    return f"{_p99(seconds) * 1000:,.0f} ms ({len(seconds):,} requests)"


def _p99(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


@dataclass
class Report:
    topology: str
    description: str
    seconds: float
    users: int
    workers: int
    threads: int
    origin: float  # monotonic start of the traffic
    faults: list[Fault]
    tally: Tally
    sms_total: int
    sms_for_503: int
    server_errors: list[str]
    server_seconds: list[float] = field(default_factory=list)  # gunicorn's request times

    def over_bound(self) -> int:
        """Requests gunicorn took longer than :data:`SERVER_BOUND_SECONDS` to answer."""
        return sum(1 for s in self.server_seconds if s > SERVER_BOUND_SECONDS)

    def other_5xx(self) -> int:
        return sum(
            1
            for a in self.tally.answers
            if a.status >= 500 and not (a.status == 503 and a.error == "storage_unavailable")
        )

    def sms_ratio(self) -> float:
        return self.sms_total / self.tally.accepted if self.tally.accepted else 0.0

    def anomalies(self) -> dict[str, int]:
        """Every count that must be zero."""
        return {
            "other 5xx": self.other_5xx(),
            "lost codes": self.tally.lost_codes,
            "used code came back": self.tally.came_back,
            "SMS per accepted send ≠ 1": abs(self.sms_total - self.tally.accepted)
            if self.tally.accepted
            else 1,
            "SMS for a 503": self.sms_for_503,
            "cooldowns burned by a 503": self.tally.burned,
            "other unexpected answers": sum(self.tally.unexpected.values()),
            "loopback server errors": len(self.server_errors),
            "requests over the stall bound (server-side)": self.over_bound(),
        }

    def windows(self) -> list[tuple[Fault, float, int, float]]:
        """Per fault: (fault, its 503 window in seconds, its 503s, the end of its window).

        A 503 belongs to the fault in force when it was *answered* (a request in flight at
        the kill started before it); its window runs from the start of its first 503'd
        request to the answer of its last one. The fault's window, for the latencies, runs
        from the injection to the later of its recovery and its last 503."""
        out = []
        bounds = [f.at for f in self.faults[1:]] + [float("inf")] * bool(self.faults)
        unavailable = [a for a in self.tally.answers if a.status == 503]
        for fault, until in zip(self.faults, bounds, strict=True):
            mine = [a for a in unavailable if fault.at <= a.started + a.seconds < until]
            window = (
                max(a.started + a.seconds for a in mine) - min(a.started for a in mine)
                if mine
                else 0.0
            )
            end = max([fault.recovered, *(a.started + a.seconds for a in mine)])
            out.append((fault, window, len(mine), end))
        return out

    def render(self) -> str:
        t = self.tally
        windows = self.windows()
        inside: list[float] = []
        outside: list[float] = []
        for answer in t.answers:
            hit = any(
                answer.started <= end and answer.started + answer.seconds >= f.at
                for f, _w, _n, end in windows
            )
            (inside if hit else outside).append(answer.seconds)
        before = [
            a
            for a in t.answers
            if a.status == 503 and (not self.faults or a.started + a.seconds < self.faults[0].at)
        ]
        anomalies = self.anomalies()
        total = sum(anomalies.values())
        per_fault = (
            "; ".join(
                f"{fault.label(self.origin)}: {window:.2f} ({count} × 503)"
                for fault, window, count, _end in windows
            )
            or "no fault"
        )
        longest = max((w for _f, w, _n, _e in windows), default=0.0)
        ops = Counter(f"{a.op} {a.status}" for a in t.answers)
        lost_answers = sum(
            1 for tries in t.sends.values() for a in tries if a.error == "answer_lost"
        )
        rows = [
            ("requests", f"{len(t.answers):,}"),
            ("other 5xx", str(anomalies["other 5xx"])),
            ("lost codes (code_expired/invalid_code on the first verify)", str(t.lost_codes)),
            ("lost codes: used code came back", str(t.came_back)),
            (
                "SMS per accepted send",
                f"{self.sms_ratio():.3f} ({self.sms_total:,} SendSms ÷ {t.accepted:,} sends "
                "answered 200)",
            ),
            ("SMS for a 503", str(self.sms_for_503)),
            ("cooldowns burned by a 503", str(t.burned)),
            (
                "other unexpected answers",
                str(sum(t.unexpected.values()))
                + (f" ({dict(t.unexpected)})" if t.unexpected else ""),
            ),
            ("loopback server errors", str(len(self.server_errors))),
            ("longest 503 window (seconds) per fault", f"{longest:.2f} — {per_fault}"),
            ("p99 latency inside the fault windows", _latency(inside)),
            ("p99 latency outside them", _latency(outside)),
            (
                "slowest answer inside / outside the fault windows (user side: includes the "
                "wait for a free gunicorn thread)",
                f"{max(inside, default=0) * 1000:,.0f} ms / "
                f"{max(outside, default=0) * 1000:,.0f} ms",
            ),
            (
                "server side (gunicorn's request time): p99 / slowest",
                f"{_p99(self.server_seconds) * 1000:,.0f} ms / "
                f"{max(self.server_seconds, default=0) * 1000:,.0f} ms "
                f"({len(self.server_seconds):,} requests)",
            ),
            (
                f"requests over the stall bound ({SERVER_BOUND_SECONDS:g} s server-side)",
                str(self.over_bound()),
            ),
            (
                "anomalies",
                f"{total} — all zero"
                if total == 0
                else f"{total} — NOT all zero ("
                + ", ".join(f"{k}: {v}" for k, v in anomalies.items() if v)
                + ")",
            ),
        ]
        head = (
            f"### {self.topology.capitalize()}\n\n{self.description}; {self.seconds:.0f} s of "
            f"traffic, {self.users} virtual users, gunicorn gthread {self.workers} workers × "
            f"{self.threads} threads, SMSCODE_STORAGE_TIMEOUT_SECONDS=1.\n"
        )
        table = "\n".join(["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows])
        notes = (
            f"\nAnswers: {', '.join(f'{k}: {v:,}' for k, v in sorted(ops.items()))}; "
            f"{t.verified:,} codes verified; {t.transport_retries} connection errors retried "
            f"({lost_answers} sends among them went through, their SMS seen); "
            f"{t.unsure} verifies whose first answer died with its connection (not judged); "
            f"{len(before)} × 503 before the first fault.\n"
        )
        return head + "\n" + table + "\n" + notes


def _sms_for_503(tally: Tally, sms: SmsIndex) -> int:
    """SendSms calls that fall inside a send answered 503 (the phone's own attempts, by
    time: every phone is sent to by one user only, so its SMS belong to its attempts)."""
    slack = 0.05
    count = 0
    for phone, attempts in tally.sends.items():
        failed = [a for a in attempts if a.status == 503]
        if not failed:
            continue
        for message in sms.messages(phone):
            when = message.send_date.timestamp()
            if any(a.wall - slack <= when <= a.ended_wall + slack for a in failed) and not any(
                a.wall - slack <= when <= a.ended_wall + slack for a in attempts if a.status == 200
            ):
                count += 1
    return count


def _request_times(log: Path, start: int = 0) -> list[float]:
    """gunicorn's request time (seconds) of each request in its access log ("status µs
    method path <pid>") from byte ``start`` on: the start-up probes before the traffic
    (each worker's first request also builds its Redis client and reads Redis' clock,
    which the store allows two timeouts) are not the stall bound's."""
    times = []
    with contextlib.suppress(OSError):
        with log.open("rb") as handle:
            handle.seek(start)
            text = handle.read().decode(errors="replace")
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                times.append(int(parts[1]) / 1e6)
    return times


# ------------------------------------------------------------------------- run


def run(
    topology: str,
    *,
    duration: float = 120.0,
    fault_every: float = 60.0,
    faults: Iterator[str] | None = None,
    users: int = 24,
    workers: int = 4,
    threads: int = 4,
    settings: dict[str, Any] | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> Report:
    """One soak on ``topology`` ("sentinel" or "cluster"): start it all, drive traffic for
    ``duration`` seconds with a fault every ``fault_every`` seconds (the first at half a
    period; kinds taken from ``faults``), stop it all, return the figures."""
    kinds = faults if faults is not None else itertools.cycle(FAULTS)
    config = {**SETTINGS, **(settings or {})}
    with contextlib.ExitStack() as stack:
        tmp = Path(tempfile.mkdtemp(prefix="smscode-soak-"))
        stack.callback(shutil.rmtree, tmp, ignore_errors=True)
        progress(f"{topology}: starting Redis, the loopback Dysmsapi server and gunicorn")
        store: Topology = SentinelTopology() if topology == "sentinel" else ClusterTopology()
        stack.callback(store.close)
        server = DysmsapiServer()
        server.start()
        stack.callback(server.stop)
        app = _gunicorn(
            tmp, store.uri, f"soak{os.getpid()}", server.endpoint, workers, threads, config
        )
        stack.callback(app.stop)
        sms = SmsIndex(server)
        crowd = Users(int(app.url.rsplit(":", 1)[1]), sms, NUMBER_BLOCKS[topology], users)
        done: list[Fault] = []
        origin = time.monotonic()
        probes = 0  # the start-up probes' lines, before the traffic
        with contextlib.suppress(OSError):
            probes = (tmp / "access.log").stat().st_size
        crowd.start()
        try:
            next_at = origin + fault_every / 2
            while next_at < origin + duration:
                time.sleep(max(0.0, next_at - time.monotonic()))
                kind = next(kinds)
                progress(f"{topology}: fault {kind} at {time.monotonic() - origin:.0f}s")
                if kind == "kill":
                    done.append(store.kill())
                elif kind == "stall":
                    done.append(store.stall(STALL_SECONDS))
                else:
                    done.append(_restart_worker(app, workers))
                next_at = max(next_at + fault_every, time.monotonic())
            time.sleep(max(0.0, origin + duration - time.monotonic()))
        finally:
            seconds = time.monotonic() - origin
            crowd.stop()
        tally = crowd.tally
        return Report(
            topology=topology,
            description=store.description
            + "".join(f"; {key}={value!r}" for key, value in (settings or {}).items()),
            seconds=seconds,
            users=users,
            workers=workers,
            threads=threads,
            origin=origin,
            faults=done,
            tally=tally,
            sms_total=sms.total(),
            sms_for_503=_sms_for_503(tally, sms),
            server_errors=list(server.errors),
            server_seconds=_request_times(tmp / "access.log", probes),
        )


def write_results(path: Path, reports: list[Report], argv: list[str]) -> None:
    """Replace (or add) the "Soak" section of ``path``, leaving the rest as it is."""
    command = f"bash scripts/bench.sh soak {' '.join(argv)}".rstrip()
    section = (
        f"## Soak\n\n`{command}` — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, see "
        "bench/soak.py for the set-up, the faults and how each figure is counted. Anomalies "
        "(each must be 0): other 5xx, lost codes (both kinds), SMS per accepted send ≠ 1, SMS "
        "for a 503, cooldowns burned by a 503, other unexpected answers, requests gunicorn took "
        f"longer than {SERVER_BOUND_SECONDS:g} s to answer (the storage timeout + the stall "
        "margin + slack for this machine).\n\n" + "\n".join(report.render() for report in reports)
    )
    write_sections(path, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--topology", choices=[*TOPOLOGIES, "both"], default="both")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per topology")
    parser.add_argument("--fault-every", type=float, default=60.0, help="seconds")
    parser.add_argument(
        "--faults", default=",".join(FAULTS), help="the cycle of faults (kill,stall,restart)"
    )
    parser.add_argument("--users", type=int, default=24)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--setting", action="append", default=[], metavar="KEY=JSON",
        help="an extra SMSCODE_* setting for the app (the value is read as JSON if it parses)",
    )  # fmt: skip
    parser.add_argument("--results", type=Path, help="write the 'Soak' section of this file")
    args = parser.parse_args(argv)
    kinds = [k.strip() for k in args.faults.split(",") if k.strip()]
    if not kinds or any(k not in FAULTS for k in kinds):
        parser.error(f"--faults takes a comma-separated list of {', '.join(FAULTS)}")
    settings: dict[str, Any] = {}
    for item in args.setting:
        key, _, value = item.partition("=")
        try:
            settings[key] = json.loads(value)
        except ValueError:
            settings[key] = value
    cycle = itertools.cycle(kinds)  # carried on across topologies
    topologies = TOPOLOGIES if args.topology == "both" else (args.topology,)
    reports = []
    for topology in topologies:
        report = run(
            topology,
            duration=args.duration,
            fault_every=args.fault_every,
            faults=cycle,
            users=args.users,
            workers=args.workers,
            threads=args.threads,
            settings=settings,
            progress=lambda line: print(line, file=sys.stderr, flush=True),
        )
        print(report.render(), flush=True)
        reports.append(report)
    if args.results:
        write_results(args.results, reports, sys.argv[1:] if argv is None else argv)
    return 1 if any(sum(r.anomalies().values()) for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
