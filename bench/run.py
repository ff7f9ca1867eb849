"""flask-smscode against its baselines: ``bash scripts/bench.sh`` (see bench/README.md).

Starts a private redis-server, two loopback Dysmsapi servers (one answering at once, one
after 50 ms), and two gunicorn servers (gthread, 2 workers × 2 threads, keep-alive): the
package's app and the baselines' app (bench/app.py). The load is wrk (a C generator, its
own process, 4 kept-alive connections). Every scenario runs once per rep, the order rotated
each rep, each run ``--seconds`` long; the verdict figure is the workers' CPU time per
request (utime + stime of every worker from /proc, over the run, ÷ answers), median of the
reps, and the ratios are taken within each rep, then the median. Beside it: throughput,
latency, and the instructions per request of the in-process WSGI path counted by valgrind's
callgrind, which other load on this shared machine cannot move. Then Redis memory, the
notification, the import line and the durability setting's latency.

``--quick``: the suite's smoke test (1 rep of 1 s, small counts, callgrind on 2 scenarios).
``--results FILE`` also writes the report (bench/results.py keeps the other sections).
``chaos`` as the first argument runs bench/chaos.py instead.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis
from flask import Flask

from bench import load
from bench.results import write_sections
from bench.settings import (
    BASE_TTL_SECONDS,
    PURPOSE,
    app_config,
    base_code_key,
    careful_hash,
    careful_key,
    quiet_package_logs,
)
from tests.servers.redis_server import RedisServer, free_port

WORKERS = 2  # gunicorn gthread workers
THREADS = 2  # threads per worker
CONNECTIONS = 4  # wrk's kept-alive connections: every worker thread busy
PROVIDER_DELAY = 0.05  # seconds: the provider of the notification figure
NOTIFY_CONCURRENCY = 4
SEED_MARGIN = 1.5  # verify bodies seeded per rep: 1.5 × the rate seen so far × seconds
WRONG_REUSE = 3  # wrong codes per seeded phone (attempts 1-3 of 5: never locked)
TIME_LIMIT_SECONDS = 900  # the benchmark stops itself, whatever happens
TICK = os.sysconf("SC_CLK_TCK")
MIN_REPLICAS = "SMSCODE_STORAGE_MIN_REPLICAS"


@dataclass
class Sizes:
    """What --quick shrinks."""

    reps: int = 5
    seconds: int = 8
    notify_numbers: int = 100_000
    notify_runs: int = 3
    memory_phones: int = 10_000
    memory_ttl: int = 20  # seconds: the short code TTL whose expiry the figure waits out
    import_samples: int = 11
    callgrind_requests: int = 200
    callgrind_warm: int = 20
    callgrind_scenarios: tuple[str, ...] = ()  # () = all
    durability_seconds: int = 3
    traffic_requests: int = 20
    profile_requests: int = 100
    layer_calls: int = 2000  # per layer and round (phase_layers)
    layer_rounds: int = 5
    # --quick: callgrind runs beside the later phases (its counts do not care; a full run
    # keeps it alone so that the import and notification timings are not disturbed).
    callgrind_background: bool = False

    def expected_seconds(self, scenarios: int) -> float:
        """A rough duration of the whole run (printed at start)."""
        http = scenarios * (self.reps * (self.seconds + 1.5) + 2)
        callgrind = (
            (len(self.callgrind_scenarios) or scenarios) / 2 * (25 + self.callgrind_requests * 0.08)
        )
        rest = self.notify_runs * 8 + self.memory_ttl + 15 + 4 * (self.durability_seconds + 3)
        layers = self.layer_rounds * self.layer_calls * 6 * 0.0006  # about 0.3 ms a call
        return http + callgrind + rest + layers + 20


QUICK = Sizes(
    reps=1,
    seconds=1,
    notify_numbers=2000,
    notify_runs=1,
    memory_phones=400,
    memory_ttl=2,
    import_samples=2,
    callgrind_requests=5,
    callgrind_warm=3,
    callgrind_scenarios=("GET endpoint", "verify, right code"),
    durability_seconds=1,
    traffic_requests=5,
    profile_requests=10,
    layer_calls=30,
    layer_rounds=1,
    callgrind_background=True,
)


# ------------------------------------------------------------------ the table


@dataclass
class Figure:
    section: str
    name: str
    unit: str
    values: list[float] = field(default_factory=list)
    target: str = ""
    check: Callable[[float], bool] | None = None
    digits: int = 1
    text: str = ""  # instead of values: "n/a (why)"

    def cell(self, value: float) -> str:
        return f"{value:,.{self.digits}f}"

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def summary(self) -> str:
        if self.text or not self.values:
            return self.text or "n/a"
        text = f"{self.cell(self.median)} {self.unit}".rstrip()
        if len(self.values) > 1:
            text += f" ({self.cell(min(self.values))}–{self.cell(max(self.values))})"
        return text

    def verdict(self) -> str:
        if self.check is None or not self.values or self.text:
            return ""
        return "met" if self.check(self.median) else "MISSED"


class Table:
    def __init__(self) -> None:
        self.figures: dict[tuple[str, str], Figure] = {}

    def add(
        self,
        section: str,
        name: str,
        value: float,
        unit: str = "",
        *,
        target: str = "",
        check: Callable[[float], bool] | None = None,
        digits: int = 1,
    ) -> None:
        key = (section, name)
        if key not in self.figures:
            self.figures[key] = Figure(
                section, name, unit, target=target, check=check, digits=digits
            )
        self.figures[key].values.append(value)

    def note(self, section: str, name: str, text: str, target: str = "") -> None:
        self.figures[(section, name)] = Figure(section, name, "", target=target, text=text)

    def get(self, section: str, name: str) -> Figure | None:
        return self.figures.get((section, name))

    def reserve(
        self,
        section: str,
        name: str,
        unit: str,
        *,
        target: str = "",
        check: Callable[[float], bool] | None = None,
        digits: int = 1,
    ) -> None:
        """A row in its place before its values come (a row that never gets one is not
        shown)."""
        self.figures[(section, name)] = Figure(
            section, name, unit, target=target, check=check, digits=digits
        )

    def render(self) -> str:
        rows = [("Figure", "Median (min–max)", "Target", "")]
        sections: dict[str, list[Figure]] = {}
        for figure in self.figures.values():  # grouped, in the order sections first appear
            if figure.values or figure.text:
                sections.setdefault(figure.section, []).append(figure)
        for section, figures in sections.items():
            rows.append((f"**{section}**", "", "", ""))
            for figure in figures:
                rows.append((figure.name, figure.summary(), figure.target, figure.verdict()))
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = []
        for index, row in enumerate(rows):
            lines.append(
                "| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |"
            )
            if index == 0:
                lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
        return "\n".join(lines)

    def missed(self) -> list[str]:
        return [f.name for f in self.figures.values() if f.verdict() == "MISSED"]


# ------------------------------------------------------------------ processes


class Provider:
    """bench/provider.py in its own process (its CPU does not compete with our GIL)."""

    def __init__(self, delay: float) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.provider", "--delay", str(delay)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())
        self.endpoint = f"127.0.0.1:{self.port}"

    def control(self, action: str) -> dict[str, Any]:
        raw = f"GET /_bench/{action} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode()
        _, answer = load.request_once(("127.0.0.1", self.port), raw)
        return dict(json.loads(answer.split(b"\r\n\r\n", 1)[1]))

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _stat(pid: int) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (state is [0], ppid [1],
    utime [11], stime [12])."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


class Gunicorn:
    """One gunicorn server (gthread workers, keep-alive) of a bench/app.py factory."""

    def __init__(self, factory: str, env: dict[str, str], log: Path, probe: str) -> None:
        self.port = free_port()
        binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
        self.process = subprocess.Popen(
            [
                binary,
                "--workers",
                str(WORKERS),
                "--worker-class",
                "gthread",
                "--threads",
                str(THREADS),
                "--keep-alive",
                "75",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--chdir",
                str(ROOT),
                "--timeout",
                "60",
                "--log-level",
                "warning",
                f"bench.app:{factory}()",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.address = ("127.0.0.1", self.port)
        deadline = time.monotonic() + 60
        raw = load.encode("127.0.0.1", self.port, probe, {"phone": "1", "purpose": PURPOSE})
        while True:
            try:
                status, _ = load.request_once(self.address, raw, timeout=2)
                if status in (200, 400):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)
        deadline = time.monotonic() + 30
        while len(self.workers()) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.1)

    def workers(self) -> list[int]:
        """The master's children (gunicorn's workers), from /proc."""
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError, IndexError, ValueError):
                    if int(_stat(int(entry))[1]) == self.process.pid:
                        found.append(int(entry))
        return sorted(found)

    def cpu(self) -> tuple[list[int], float]:
        """The workers and their CPU seconds so far (user + system, all threads)."""
        pids = self.workers()
        total = 0
        for pid in pids:
            fields = _stat(pid)
            total += int(fields[11]) + int(fields[12])
        return pids, total / TICK

    def stop(self) -> None:
        if self.process.poll() is None:
            # SIGINT: quick shutdown (SIGTERM waits for kept-alive connections to finish)
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ------------------------------------------------------------------ seeding


class CaptureSender:
    """A sender that sends nothing and keeps each phone's code: the driver seeds live codes
    through the package's own ``service.send`` (same store and secret as the gunicorn app),
    so a verify's code is known without any hook in the package."""

    codes: ClassVar[dict[str, str]] = {}

    def __init__(self, config: object) -> None:
        pass

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> Any:
        from flask_smscode import SendReceipt

        CaptureSender.codes[phone] = code
        return SendReceipt("OK", out_id)


class Phones:
    """Fresh, valid mainland mobiles: every seeded phone is one nothing else touched."""

    def __init__(self, head: str, start: int = 0) -> None:
        self.head = head  # e.g. "130": 130XXXXXXXX are all mobile numbers
        self.next = start

    def take(self, count: int) -> list[str]:
        width = 11 - len(self.head)
        start, self.next = self.next, self.next + count
        return [f"{self.head}{i:0{width}d}" for i in range(start, start + count)]


def driver_app(redis_url: str, prefix: str, extra: dict[str, Any] | None = None) -> Flask:
    from flask_smscode import sms_bp

    app = Flask("bench-driver")
    app.config.update(app_config(redis_url, prefix, "127.0.0.1:1", extra))
    app.config["SMSCODE_SENDER"] = CaptureSender
    app.register_blueprint(sms_bp)
    return app


def _service(app: Flask) -> Any:
    from flask_smscode import get_service

    return get_service(app)


def seed_package_codes(service: Any, phones: list[str]) -> dict[str, str]:
    """A live code per phone through ``service.send`` (4 threads); phone -> code."""

    def one(phone: str) -> tuple[str, str]:
        result = service.send(phone, PURPOSE)
        return phone, CaptureSender.codes.pop(result.phone)

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, phones))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# ------------------------------------------------------------------ scenarios


@dataclass
class Scenario:
    name: str
    app: str  # "package" or "baseline"
    path: str
    expect: int  # the status every answer must have
    bodies: Callable[[int], list[dict[str, Any]]] | None  # n -> bodies (seeds as needed)
    head: str = ""  # no bodies: wrk builds a fresh phone per request from this head
    rate: float = 4000.0  # to size the next seeding: generous until a run measured it
    learned: bool = False


class Bench:
    """The scenarios and the state they share (the phone allocators)."""

    def __init__(self, service: Any, rds: redis.Redis, prefix: str) -> None:
        self.service, self.rds, self.prefix = service, rds, prefix
        self.package_phones = Phones("130")
        self.base_phones = Phones("150")
        self.fresh_next = 0  # wrk's fresh-phone counter start, never reused
        self.lock = threading.Lock()  # --quick's callgrind seeds beside the other phases

    def package_verify(self, right: bool) -> Callable[[int], list[dict[str, Any]]]:
        def bodies(n: int) -> list[dict[str, Any]]:
            if right:
                codes = seed_package_codes(self.service, self.package_phones.take(n))
                return [{"phone": p, "code": c, "purpose": PURPOSE} for p, c in codes.items()]
            codes = seed_package_codes(self.service, self.package_phones.take(-(-n // WRONG_REUSE)))
            one = [{"phone": p, "code": wrong(c), "purpose": PURPOSE} for p, c in codes.items()]
            return one * WRONG_REUSE

        return bodies

    def base_verify(self, careful: bool, right: bool) -> Callable[[int], list[dict[str, Any]]]:
        def bodies(n: int) -> list[dict[str, Any]]:
            phones = self.base_phones.take(n if right else -(-n // WRONG_REUSE))
            codes = {p: f"{(int(p) * 7919) % 1_000_000:06d}" for p in phones}
            pipe = self.rds.pipeline(transaction=False)
            for phone, code in codes.items():
                if careful:
                    key = careful_key(self.prefix, phone)
                    pipe.hset(key, "c", careful_hash(phone, code))
                    pipe.expire(key, BASE_TTL_SECONDS)
                else:
                    pipe.set(base_code_key(self.prefix, phone), code, ex=BASE_TTL_SECONDS)
            pipe.execute()
            one = [
                {"phone": p, "code": c if right else wrong(c), "purpose": PURPOSE}
                for p, c in codes.items()
            ]
            return one if right else one * WRONG_REUSE

        return bodies

    def scenarios(self) -> list[Scenario]:
        get_body = [{"phone": "15000000000", "purpose": PURPOSE}]
        return [
            Scenario("GET endpoint", "baseline", "/base/get", 200, lambda n: get_body * n),
            Scenario(
                "naive verify, right code",
                "baseline",
                "/base/verify",
                200,
                self.base_verify(False, True),
            ),
            Scenario(
                "naive verify, wrong code",
                "baseline",
                "/base/verify",
                400,
                self.base_verify(False, False),
            ),
            Scenario(
                "careful verify, right code",
                "baseline",
                "/base/careful",
                200,
                self.base_verify(True, True),
            ),
            Scenario(
                "careful verify, wrong code",
                "baseline",
                "/base/careful",
                400,
                self.base_verify(True, False),
            ),
            Scenario(
                "verify, right code", "package", "/sms/verify", 200, self.package_verify(True)
            ),
            Scenario(
                "verify, wrong code", "package", "/sms/verify", 400, self.package_verify(False)
            ),
            Scenario("SendSms endpoint", "baseline", "/base/sendsms", 200, None, head="15"),
            Scenario("send", "package", "/sms/send", 200, None, head="19"),
        ]

    def fresh_bodies(self, scenario: Scenario, n: int) -> list[dict[str, Any]]:
        """For callgrind: n request bodies of a send scenario, each with a fresh phone."""
        start, self.fresh_next = self.fresh_next, self.fresh_next + n
        return [
            {"phone": f"{scenario.head}{start + i + 1:09d}", "purpose": PURPOSE} for i in range(n)
        ]

    def bodies(self, scenario: Scenario, n: int) -> list[dict[str, Any]]:
        with self.lock:
            if scenario.bodies is None:
                return self.fresh_bodies(scenario, n)
            return scenario.bodies(n)


def write_bodies(bodies: list[dict[str, Any]]) -> Path:
    handle = tempfile.NamedTemporaryFile("w", suffix=".jsonl", prefix="bench-bodies-", delete=False)
    with handle:
        for body in bodies:
            handle.write(json.dumps(body, separators=(",", ":")) + "\n")
    return Path(handle.name)


@dataclass(frozen=True)
class Measured:
    cpu_us: float  # workers' CPU per request, µs
    rps: float
    p50_ms: float
    p99_ms: float


def warm_up(bench: Bench, app: Gunicorn, scenario: Scenario) -> None:
    """A few sequential requests (distinct bodies) before a scenario's first timed run: a
    worker's first request of a kind imports, connects and loads scripts (seconds on a
    loaded machine), which a short run must not measure. Each answer must be the
    expected one already."""
    for body in bench.bodies(scenario, 2 * WORKERS * THREADS):
        raw = load.encode(*app.address, scenario.path, body)
        status, _ = load.request_once(app.address, raw, timeout=30)
        if status != scenario.expect:
            raise RuntimeError(f"{scenario.name}: warm-up answered {status}")


def measure(
    bench: Bench,
    app: Gunicorn,
    scenario: Scenario,
    seconds: int,
    connections: int = CONNECTIONS,
    *,
    retried: bool = False,
) -> Measured:
    """One wrk run of ``scenario``: seeds what it needs first (outside the measurement),
    then the workers' CPU over the run ÷ the answers."""
    bodies_file = None
    start = 0
    count = 0
    if scenario.bodies is not None:
        count = int(scenario.rate * seconds * SEED_MARGIN) + 50
        bodies_file = write_bodies(scenario.bodies(count))
    else:
        start, bench.fresh_next = bench.fresh_next, bench.fresh_next + 10_000_000
    try:
        pids, before = app.cpu()
        result = load.wrk(
            app.address,
            scenario.path,
            seconds=seconds,
            connections=connections,
            expect=scenario.expect,
            bodies=bodies_file,
            head=scenario.head,
            start=start,
        )
        after_pids, after = app.cpu()
    finally:
        if bodies_file is not None:
            bodies_file.unlink()
    if count and result.requests > count and not retried:
        # The app ran faster than the seeding planned for (the file wrapped: used codes
        # answered): run again with enough bodies rather than fail the benchmark.
        scenario.rate = max(scenario.rate, result.rps) * 1.2
        return measure(bench, app, scenario, seconds, connections, retried=True)
    if after_pids != pids:
        raise RuntimeError(f"{scenario.name}: a gunicorn worker restarted during the run")
    if result.bad or result.errors or not result.requests:
        raise RuntimeError(
            f"{scenario.name}: {result.bad} of {result.requests} answers were not "
            f"{scenario.expect} and {result.errors} socket errors (a throttle, a used code "
            "or an error would be measured instead of the decision)"
        )
    scenario.rate = max(scenario.rate, result.rps) if scenario.learned else result.rps
    scenario.learned = True
    return Measured(
        (after - before) / result.requests * 1e6, result.rps, result.p50_ms, result.p99_ms
    )


# ------------------------------------------------------------------ Redis round trips


def commandstats(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter(
        {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    )


def redis_traffic(
    ctx: Context, app: Gunicorn, scenario: Scenario, n: int
) -> tuple[float, float, Counter[str]]:
    """Round trips and commands per request of ``n`` sequential requests: commands the
    app's connections sent, from MONITOR (a script call is one; what a script runs shows
    as ``lua``), and the ``INFO commandstats`` delta, script-internal commands included."""
    raws = [load.encode(*app.address, scenario.path, b) for b in ctx.bench.bodies(scenario, n)]
    token = uuid.uuid4().hex
    seen: list[dict[str, Any]] = []
    ready = threading.Event()

    def watch() -> None:
        client = redis.Redis.from_url(ctx.redis_url)
        with client.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if token in entry["command"]:
                    return
                seen.append(entry)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(10)
    before = commandstats(ctx.rds)
    for raw in raws[:n]:
        status, _ = load.request_once(app.address, raw)
        if status != scenario.expect:
            raise RuntimeError(f"{scenario.name}: answered {status}")
    after = commandstats(ctx.rds)
    ctx.rds.echo(token)
    watcher.join(10)
    delta = after - before
    delta["info"] -= 1  # our own INFO commandstats
    delta = +delta
    trips = sum(
        1
        for e in seen
        if e.get("client_type") != "lua" and not str(e["command"]).upper().startswith("INFO")
    )
    return trips / n, sum(delta.values()) / n, delta


# ------------------------------------------------------------------ instructions


def callgrind_totals(out: Path) -> list[int]:
    """The ``totals:`` of each dump callgrind wrote (``out.1``, ``out.2``, ...), in order."""
    totals = []
    index = 1
    while (dump := out.with_name(f"{out.name}.{index}")).exists():
        for line in dump.read_text().splitlines():
            if line.startswith("totals:"):
                totals.append(int(line.split()[1]))
                break
        index += 1
    return totals


def instructions(ctx: Context, scenario: Scenario, bodies_file: Path, workdir: Path) -> float:
    """Instructions per request of ``scenario`` through the in-process WSGI path under
    callgrind (bench/app.py ``instructions_main``): the app's loop minus the empty loop."""
    sizes = ctx.sizes
    out = workdir / ("cg-" + "".join(c if c.isalnum() else "-" for c in scenario.name) + ".out")
    env = {
        **os.environ,
        "BENCH_REDIS_URL": ctx.redis_url,
        "BENCH_PREFIX": ctx.prefix,
        "BENCH_PROVIDER": ctx.instant.endpoint,
        "PYTHONHASHSEED": "0",  # the same dict layouts run after run
    }
    done = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            "--dump-before=getppid",
            f"--log-file={out}.log",
            sys.executable,
            "-c",
            "from bench.app import instructions_main; instructions_main()",
            scenario.app,
            scenario.path,
            str(bodies_file),
            str(scenario.expect),
            str(sizes.callgrind_warm),
            str(sizes.callgrind_requests),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"callgrind {scenario.name}: {done.stderr[-1500:]}")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if answer["bad"]:
        raise RuntimeError(f"callgrind {scenario.name}: unexpected answers {answer}")
    totals = callgrind_totals(out)
    if len(totals) < 3:
        raise RuntimeError(f"callgrind {scenario.name}: {len(totals)} dumps, 3 expected")
    return (totals[2] - totals[1]) / sizes.callgrind_requests


def _valgrind_version() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        return subprocess.run(
            ["valgrind", "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
    return "valgrind ?"


# ------------------------------------------------------------------ memory


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def used_memory(client: redis.Redis) -> int:
    """``used_memory`` with no other client connected: the seeding's connections and their
    buffers (which Redis shrinks lazily) are nobody's per-phone cost. A pooled connection
    closed here reconnects when next taken from its pool."""
    client.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    time.sleep(0.05)
    return int(client.info("memory")["used_memory"])


@dataclass
class MemoryRun:
    """The package's codes on their own private Redis, waiting for their expiry."""

    server: RedisServer
    client: redis.Redis
    before: int
    phones: int
    expires_at: float  # monotonic


def memory_start(ctx: Context) -> MemoryRun:
    """N phones sent to: the hand-written ``SET code EX 300`` on one fresh Redis, the
    package's ``service.send`` (short code TTL) on another; ``used_memory`` growth ÷ N."""
    n, ttl = ctx.sizes.memory_phones, ctx.sizes.memory_ttl
    section = f"Redis memory: {n:,} phones sent to (used_memory growth ÷ phones)"
    plain = RedisServer().start()
    try:
        client = redis.Redis.from_url(plain.url)
        before = used_memory(client)
        pipe = client.pipeline(transaction=False)
        for i in range(n):
            pipe.set(f"code:1860{i:07d}", f"{i % 1_000_000:06d}", ex=BASE_TTL_SECONDS)
        pipe.execute()
        hand = (used_memory(client) - before) / n
        hand_key = int(client.memory_usage("code:18600000001", samples=0) or 0)
    finally:
        plain.cleanup()
    ctx.table.add(section, "hand-written `SET code EX 300`", hand, "B", digits=0)
    server = RedisServer().start()
    client = redis.Redis.from_url(server.url)
    prefix = "benchmem"
    extra = {"SMSCODE_CODE_TTL_SECONDS": ttl, "SMSCODE_RESEND_INTERVAL_SECONDS": ttl}
    service = _service(driver_app(server.url, prefix, extra))
    seed_package_codes(service, Phones("1770").take(4))  # scripts loaded, shared keys made
    before = used_memory(client)
    started = time.monotonic()
    seeded = Phones("1870").take(n)
    seed_package_codes(service, seeded)
    live = (used_memory(client) - before) / n
    one = service.store.keys.phone("+86" + seeded[1])
    package_key = int(client.memory_usage(one, samples=0) or 0)
    ctx.table.add(section, "package: live codes", live, "B", digits=0)
    ctx.table.add(
        section,
        "package ÷ hand-written",
        live / hand,
        "×",
        target="≤ 1.30×",
        check=lambda v: v <= 1.3,
        digits=2,
    )
    # The floor (bench/README.md): MEMORY USAGE counts one key's own allocations (its
    # dict entry, key name, object and value); used_memory ÷ phones adds what every key
    # costs beside them (its expiry entry, the keyspace's hash-table slots).
    ctx.table.add(section, "hand-written: MEMORY USAGE of one code key", hand_key, "B", digits=0)
    ctx.table.add(
        section, "package: MEMORY USAGE of one live phone hash", package_key, "B", digits=0
    )
    fields = {
        _text(k): _text(v) for k, v in client.hgetall(one).items()
    }  # sizes only: values are an HMAC, expiries and counters, never a code
    ctx.notes.append(
        "- Memory: one live phone hash holds "
        + ", ".join(f"`{k}` ({len(v)} B value)" for k, v in sorted(fields.items()))
        + f"; the hand-written key holds the 6-digit code ({hand_key} B by MEMORY USAGE)."
    )
    ctx.notes.append(
        f"- Memory: the package's codes were made with a {ttl} s code TTL (and cooldown) so "
        f"that their expiry can be waited out; creating {n:,} took "
        f"{time.monotonic() - started:.1f} s through `service.send`."
    )
    return MemoryRun(server, client, before, n, started + ttl + 1.5)


def memory_finish(ctx: Context, run: MemoryRun) -> None:
    """After every code expired: what is left per phone (a full SCAN makes Redis drop
    every expired key it passes, instead of waiting for its sampling)."""
    try:
        time.sleep(max(0.0, run.expires_at - time.monotonic()))
        keys = list(run.client.scan_iter(count=10_000))
        left = (used_memory(run.client) - run.before) / run.phones
        pipe = run.client.pipeline(transaction=False)
        for key in keys:
            pipe.memory_usage(key, samples=0)
        usage = sum(int(u or 0) for u in pipe.execute())
        left_keys = len(keys)
        section = next(f.section for f in ctx.table.figures.values() if "memory" in f.section)
        ctx.table.add(
            section, "package: left per phone after the codes expired", left, "B", digits=0
        )
        ctx.table.add(
            section,
            "package: the same, MEMORY USAGE of the keys left ÷ phones",
            usage / run.phones,
            "B",
            digits=0,
        )
        sample = [k for k in run.client.scan_iter(match="*18700000001*", count=10_000)]
        shown = ", ".join(
            f"`{_text(k)}` {_text(run.client.type(k))} "
            f"{run.client.memory_usage(k, samples=0)} B ttl {run.client.ttl(k)} s"
            for k in sample
        )
        ctx.notes.append(
            f"- Memory after expiry: {left_keys:,} keys left in that Redis for "
            f"{run.phones:,} phones; one phone's: {shown or 'none'}."
        )
        # What the hash would keep with per-field expiry (HEXPIRE, Redis 7.4; this Redis
        # has none): the expired code, cooldown and failure fields dropped, only the send
        # counters left — the floor of this key layout (bench/README.md).
        pipe = run.client.pipeline(transaction=False)
        for key in keys:
            if "{+" in _text(key):  # the phones' own hashes, not the guard's or stats
                dead = [f for f in run.client.hkeys(key) if _text(f) != "n"]
                if dead:
                    pipe.hdel(key, *dead)
        pipe.execute()
        ctx.table.add(
            section,
            "package: left per phone with the expired fields dropped (the layout's floor)",
            (used_memory(run.client) - run.before) / run.phones,
            "B",
            digits=0,
        )
    finally:
        run.server.cleanup()


# ------------------------------------------------------------------ notification


def _bench_python(*args: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", *args],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def notification(ctx: Context, run: int) -> tuple[float, float, float]:
    """The raw SDK and ``AliyunSms.send_message`` on the same numbers, each in a fresh
    process (the raw one never imports flask_smscode), the order alternating per run:
    (raw wall s, package wall s, package's time to first call s)."""
    n = ctx.sizes.notify_numbers
    head = f"18{6 + run % 2}"
    common = (ctx.slow.endpoint, head, str(n), str(NOTIFY_CONCURRENCY))
    main = "from bench.app import notify_main; notify_main()"
    results: dict[str, dict[str, Any]] = {}
    for mode in ("raw", "package") if run % 2 == 0 else ("package", "raw"):
        results[mode] = _bench_python(main, mode, *common)
        stats = ctx.slow.control("stats")
        if stats["numbers"] != n or stats["errors"]:
            raise RuntimeError(f"notification ({mode}): {stats}")
        results[mode]["first_at"] = stats["first_at"]
    package = results["package"]
    return results["raw"]["wall"], package["wall"], package["first_at"] - package["called"]


# ------------------------------------------------------------------ import cost

_IMPORT_PROBE = """
import json, time
t0 = time.perf_counter(); import flask
t1 = time.perf_counter(); from flask_smscode import sms_bp
t2 = time.perf_counter()
print(json.dumps({"flask": t1 - t0, "line": t2 - t1}))
"""


# ------------------------------------------------------------------ machine


def loadavg() -> str:
    with contextlib.suppress(OSError):
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return "?"


def machine(rds: redis.Redis) -> list[str]:
    def grep(path: str, key: str) -> str:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        return "?"

    from importlib.metadata import version

    server = rds.info("server")
    ram = grep("/proc/meminfo", "MemTotal")
    wrk_version = subprocess.run(
        [load.wrk_binary(), "--version"], capture_output=True, text=True
    ).stdout.split(" [")[0]
    return [
        f"- CPUs (nproc): {os.cpu_count()}, {grep('/proc/cpuinfo', 'model name')}",
        f"- RAM: {int(ram.split()[0]) / 1024 / 1024:.1f} GiB" if ram != "?" else "- RAM: ?",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"gunicorn {version('gunicorn')} (gthread, {WORKERS} workers × {THREADS} threads, "
        f"keep-alive), redis-py {redis.__version__}, {wrk_version.strip()}, "
        f"{_valgrind_version()}",
        f"- Redis {server['redis_version']} ({rds.info('memory').get('mem_allocator', '?')}), "
        "private instance, no persistence",
    ]


# ------------------------------------------------------------------ phases


@dataclass
class Context:
    """What the phases share: the running processes, the table and the notes."""

    args: argparse.Namespace
    sizes: Sizes
    redis_url: str
    rds: redis.Redis
    prefix: str
    package: Gunicorn
    baseline: Gunicorn
    instant: Provider
    slow: Provider
    bench: Bench
    table: Table = field(default_factory=Table)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: str = ""
    memory: MemoryRun | None = None
    background: tuple[threading.Thread, list[BaseException]] | None = None

    def app(self, scenario: Scenario) -> Gunicorn:
        return self.package if scenario.app == "package" else self.baseline


# (package scenario, baseline scenario, target ratio or None): ratio = baseline's cost ÷
# the package's, so above 1 the package is cheaper.
PAIRS: list[tuple[str, str, float | None]] = [
    ("verify, right code", "GET endpoint", 0.85),
    ("verify, wrong code", "GET endpoint", 0.85),
    ("verify, right code", "careful verify, right code", 1.0),
    ("verify, wrong code", "careful verify, wrong code", 1.0),
    ("verify, right code", "naive verify, right code", None),
    ("verify, wrong code", "naive verify, wrong code", None),
    ("send", "SendSms endpoint", 0.9),
]


def _at_least(target: float) -> Callable[[float], bool]:
    return lambda value: value >= target


VERDICTS = "Speed targets: the baseline's cost ÷ the package's (above 1: the package is cheaper)"


def reserve_verdicts(table: Table) -> None:
    """The verdict rows first in the table, CPU and instructions side by side."""
    for mine, base, target in PAIRS:
        for measure_name in ("worker CPU", "instructions"):
            table.reserve(
                VERDICTS,
                f"{mine} ÷ {base}: {measure_name}",
                "×",
                target=f"≥ {target:.2f}×" if target is not None else "",
                check=_at_least(target) if target is not None else None,
                digits=2,
            )


def _add_ratios(table: Table, measure_name: str, costs: dict[str, float]) -> None:
    for mine, base, _ in PAIRS:
        if mine in costs and base in costs:
            table.add(VERDICTS, f"{mine} ÷ {base}: {measure_name}", costs[base] / costs[mine])


def phase_http(ctx: Context) -> None:
    """Every scenario once per rep, the order rotated each rep; CPU per request per run."""
    sizes, table = ctx.sizes, ctx.table
    scenarios = ctx.bench.scenarios()
    for scenario in scenarios:
        warm_up(ctx.bench, ctx.app(scenario), scenario)
        if sizes.reps > 1:  # under load too, and learn the rates that size the seeding
            measure(ctx.bench, ctx.app(scenario), scenario, 1)
    cpu = f"Worker CPU per request (µs), median of {sizes.reps} reps × {sizes.seconds} s"
    rate = "Throughput and latency (wrk, 4 kept-alive connections)"
    for rep in range(sizes.reps):
        shift = rep % len(scenarios)
        order = scenarios[shift:] + scenarios[:shift]
        _progress(f"rep {rep + 1}/{sizes.reps}: {', '.join(s.name for s in order)}")
        costs: dict[str, float] = {}
        for scenario in order:
            m = measure(ctx.bench, ctx.app(scenario), scenario, sizes.seconds)
            costs[scenario.name] = m.cpu_us
            table.add(cpu, scenario.name, m.cpu_us, "µs", digits=0)
            table.add(rate, f"{scenario.name}: requests/s", m.rps, "req/s", digits=0)
            table.add(rate, f"{scenario.name}: p50", m.p50_ms, "ms", digits=2)
            table.add(rate, f"{scenario.name}: p99", m.p99_ms, "ms", digits=2)
        _add_ratios(table, "worker CPU", costs)
    # Round trips: the package's single-Redis promise, and what each baseline costs Redis.
    trips = "Redis per request (MONITOR, sequential requests)"
    for scenario in scenarios:
        if scenario.path == "/base/sendsms":
            continue
        per_trip, per_command, delta = redis_traffic(
            ctx, ctx.app(scenario), scenario, sizes.traffic_requests
        )
        single = scenario.app == "package"
        table.add(
            trips,
            f"{scenario.name}: round trips",
            per_trip,
            target="1" if single else "",
            check=(lambda v: v <= 1.0) if single else None,
            digits=2,
        )
        shown = ", ".join(
            f"{name} {calls / sizes.traffic_requests:g}" for name, calls in sorted(delta.items())
        )
        ctx.commands.append(f"- {scenario.name}: {per_command:g} commands ({shown})")


def phase_instructions(ctx: Context) -> None:
    """callgrind, two at a time (instruction counts do not care about the load)."""
    sizes = ctx.sizes
    wanted = [
        s
        for s in ctx.bench.scenarios()
        if not sizes.callgrind_scenarios or s.name in sizes.callgrind_scenarios
    ]
    workdir = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    try:
        files = {
            s.name: write_bodies(
                ctx.bench.bodies(s, sizes.callgrind_warm + sizes.callgrind_requests)
            )
            for s in wanted
        }
        with ThreadPoolExecutor(2) as pool:
            counts = dict(
                zip(
                    [s.name for s in wanted],
                    pool.map(lambda s: instructions(ctx, s, files[s.name], workdir), wanted),
                    strict=True,
                )
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for path in locals().get("files", {}).values():
            path.unlink(missing_ok=True)
    section = (
        f"Instructions per request (callgrind, in-process WSGI, {sizes.callgrind_requests} "
        "requests − the empty loop)"
    )
    for name, count in counts.items():
        ctx.table.add(section, name, count / 1000, "k", digits=0)
    _add_ratios(ctx.table, "instructions", counts)


def phase_instructions_start(ctx: Context) -> None:
    if not ctx.sizes.callgrind_background:
        phase_instructions(ctx)
        return
    failed: list[BaseException] = []

    def run() -> None:
        try:
            phase_instructions(ctx)
        except BaseException as exc:  # re-raised by phase_instructions_wait
            failed.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ctx.background = (thread, failed)


def phase_instructions_wait(ctx: Context) -> None:
    if ctx.background is not None:
        thread, failed = ctx.background
        thread.join()
        if failed:
            raise failed[0]


def phase_memory_start(ctx: Context) -> None:
    ctx.memory = memory_start(ctx)


def phase_memory_finish(ctx: Context) -> None:
    if ctx.memory is not None:
        memory_finish(ctx, ctx.memory)


def phase_notification(ctx: Context) -> None:
    n = ctx.sizes.notify_numbers
    section = f"Notification: {n:,} numbers, SendSms of 1000, 4 in flight, 50 ms provider"
    for run in range(ctx.sizes.notify_runs):
        raw, package, first = notification(ctx, run)
        ctx.table.add(section, "raw SDK: wall time", raw, "s", digits=2)
        ctx.table.add(section, "package: wall time", package, "s", digits=2)
        ctx.table.add(
            section,
            "package ÷ raw SDK",
            package / raw,
            "×",
            target="≤ 1.05×",
            check=lambda v: v <= 1.05,
            digits=2,
        )
        ctx.table.add(
            section,
            "package: time to first call",
            first * 1000,
            "ms",
            target="≤ 30 ms",
            check=lambda v: v <= 30,
            digits=0,
        )


def phase_import(ctx: Context) -> None:
    samples = [_bench_python(_IMPORT_PROBE) for _ in range(ctx.sizes.import_samples)]
    section = f"Import (fresh interpreters, median of {ctx.sizes.import_samples})"
    ctx.table.add(
        section,
        "`import flask`",
        statistics.median(s["flask"] for s in samples) * 1000,
        "ms",
        digits=1,
    )
    ctx.table.add(
        section,
        "`from flask_smscode import sms_bp` on top",
        statistics.median(s["line"] for s in samples) * 1000,
        "ms",
        target="≤ +40 ms",
        check=lambda v: v <= 40,
        digits=1,
    )


def phase_durability(ctx: Context) -> None:
    """Send and verify latency with SMSCODE_STORAGE_MIN_REPLICAS=1 vs 0 on a master with
    one replica (one connection: latency, not queueing)."""
    from flask_smscode.config import SETTINGS

    section = f"Durability: {MIN_REPLICAS} on a master + 1 replica (1 connection)"
    names = [
        f"{op}, {MIN_REPLICAS}={v}: {p}"
        for v in (1, 0)
        for op in ("send", "verify")
        for p in ("p50", "p99")
    ]
    if MIN_REPLICAS not in SETTINGS:
        for name in names:
            ctx.table.note(section, name, "n/a (setting absent)")
        return
    master = RedisServer().start()
    replica = RedisServer(args=["--replicaof", "127.0.0.1", str(master.port)]).start()
    try:
        deadline = time.monotonic() + 20
        while redis.Redis(port=replica.port).info("replication").get("master_link_status") != "up":
            if time.monotonic() > deadline:
                raise RuntimeError("the replica did not sync")
            time.sleep(0.1)
        for value in (1, 0):
            prefix = f"benchdur{value}"
            extra = {MIN_REPLICAS: value}
            app = Gunicorn(
                "create_app",
                {
                    "BENCH_REDIS_URL": master.url,
                    "BENCH_PREFIX": prefix,
                    "BENCH_PROVIDER": ctx.instant.endpoint,
                    "BENCH_EXTRA": json.dumps(extra),
                },
                Path(master.dir) / f"gunicorn-{value}.log",
                "/sms/send",
            )
            try:
                bench = Bench(
                    _service(driver_app(master.url, prefix, extra)),
                    redis.Redis.from_url(master.url),
                    prefix,
                )
                for scenario in bench.scenarios():
                    if scenario.name not in ("send", "verify, right code"):
                        continue
                    op = "send" if scenario.name == "send" else "verify"
                    scenario.rate = 1400.0  # 1 connection: about 1,000 a second
                    warm_up(bench, app, scenario)
                    m = measure(bench, app, scenario, ctx.sizes.durability_seconds, 1)
                    ctx.table.add(
                        section, f"{op}, {MIN_REPLICAS}={value}: p50", m.p50_ms, "ms", digits=2
                    )
                    ctx.table.add(
                        section, f"{op}, {MIN_REPLICAS}={value}: p99", m.p99_ms, "ms", digits=2
                    )
            finally:
                app.stop()
    finally:
        replica.cleanup()
        master.cleanup()


LAYERS = "Where a wrong-code verify's CPU goes (in-process, process CPU per call, median of rounds)"


def phase_layers(ctx: Context) -> None:
    """The measured floor of the verify targets: the same wrong-code verify timed at each
    layer, in this process (no HTTP server, no load generator: process CPU of N calls),
    beside the two baselines through the same in-process WSGI call.

    What it shows: how much of the package's cost is Flask and the view around the service
    (WSGI − service.verify), the service around the store (service.verify − check_code),
    and the store call itself (check_code: one EVALSHA with its arguments and reply) — and
    the same split for the GET endpoint (WSGI − one redis-py GET). A layer's figure is a
    floor for every design that keeps that layer."""
    from bench.app import _wsgi_environ, create_app, create_baseline_app
    from flask_smscode.errors import SmsCodeError

    os.environ.update(
        BENCH_REDIS_URL=ctx.redis_url, BENCH_PREFIX=ctx.prefix, BENCH_PROVIDER=ctx.instant.endpoint
    )
    sizes = ctx.sizes
    package, baseline = create_app(), create_baseline_app()
    service = _service(package)
    store = service.store
    seen: list[str] = []

    def start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
        seen.append(status[:3])

    def wsgi(app: Flask, path: str, body: bytes) -> None:
        result = app(_wsgi_environ(path, body), start_response)
        b"".join(result)
        getattr(result, "close", lambda: None)()

    def encoded(bodies: list[dict[str, Any]]) -> list[bytes]:
        return [json.dumps(b, separators=(",", ":")).encode() for b in bodies]

    def timed(call: Callable[[Any], object], items: Sequence[Any]) -> float:
        seen.clear()
        started = time.process_time()
        for item in items:
            call(item)
        return (time.process_time() - started) / len(items) * 1e6

    ip = "127.0.0.1"
    client = service._client_limits("verify", ip)  # what the service passes the store

    def store_call(args: tuple[str, str]) -> None:
        e164, digest = args
        store.check_code(
            e164,
            PURPOSE,
            digest,
            max_attempts=service.settings.max_attempts,
            window=service.settings.attempt_window,
            client=client,
            guard=service.guard.request(e164, service._guard_source(ip))
            if service.guard.converts
            else None,
        )

    def service_call(body: dict[str, Any]) -> None:
        with contextlib.suppress(SmsCodeError):
            service.verify(body["phone"], body["code"], PURPOSE, client_ip=ip)

    n = sizes.layer_calls
    get_body = encoded([{"phone": "15000000000", "purpose": PURPOSE}])[0]
    rounds: dict[str, list[float]] = defaultdict(list)
    for _ in range(sizes.layer_rounds):
        careful = encoded(ctx.bench.bodies(_scenario(ctx, "careful verify, wrong code"), n))
        mine = ctx.bench.bodies(_scenario(ctx, "verify, wrong code"), 3 * n)
        through_wsgi, through_service, to_store = mine[:n], mine[n : 2 * n], mine[2 * n :]
        hashed = [
            ("+86" + b["phone"], service._hash("+86" + b["phone"], PURPOSE, b["code"]))
            for b in to_store
        ]
        rounds["GET endpoint (WSGI)"].append(
            timed(lambda b: wsgi(baseline, "/base/get", b), [get_body] * n)
        )
        rounds["redis-py GET (the GET endpoint's store call)"].append(
            timed(lambda _: ctx.rds.get("bench-layers-probe"), range(n))
        )
        rounds["careful verify, wrong code (WSGI)"].append(
            timed(lambda b: wsgi(baseline, "/base/careful", b), careful)
        )
        rounds["verify, wrong code (WSGI)"].append(
            timed(lambda b: wsgi(package, "/sms/verify", b), encoded(through_wsgi))
        )
        if set(seen) != {"400"}:
            raise RuntimeError(f"layers: unexpected answers {sorted(set(seen))}")
        with package.app_context():
            rounds["service.verify (no Flask request)"].append(timed(service_call, through_service))
        rounds["store.check_code (one EVALSHA)"].append(timed(store_call, hashed))
    median = {name: statistics.median(values) for name, values in rounds.items()}
    for name, value in median.items():
        ctx.table.add(LAYERS, name, value, "µs", digits=0)
    wsgi_pkg, svc, st = (
        median["verify, wrong code (WSGI)"],
        median["service.verify (no Flask request)"],
        median["store.check_code (one EVALSHA)"],
    )
    get_wsgi, get_store = (
        median["GET endpoint (WSGI)"],
        median["redis-py GET (the GET endpoint's store call)"],
    )
    ctx.table.add(
        LAYERS, "package: Flask + view around the service", wsgi_pkg - svc, "µs", digits=0
    )
    ctx.table.add(LAYERS, "package: service around the store call", svc - st, "µs", digits=0)
    ctx.table.add(
        LAYERS, "GET endpoint: Flask + view around its store call", get_wsgi - get_store, "µs",
        digits=0,
    )  # fmt: skip
    ctx.table.add(
        LAYERS,
        "careful ÷ package through WSGI (the in-process ratio)",
        median["careful verify, wrong code (WSGI)"] / wsgi_pkg,
        "×",
        digits=2,
    )


def _scenario(ctx: Context, name: str) -> Scenario:
    return next(s for s in ctx.bench.scenarios() if s.name == name)


def phase_profile(ctx: Context) -> None:
    ctx.profile = profile(ctx, ctx.sizes.profile_requests)


def profile(ctx: Context, count: int = 100) -> str:
    """cProfile of ``count`` verifies (right code) and ``count`` sends through the package's
    app in this process (test client; same Redis, same loopback provider)."""
    from bench.app import create_app

    os.environ.update(
        BENCH_REDIS_URL=ctx.redis_url, BENCH_PREFIX=ctx.prefix, BENCH_PROVIDER=ctx.instant.endpoint
    )
    client = create_app().test_client()
    out = []
    for name, path in (("verify, right code", "/sms/verify"), ("send", "/sms/send")):
        scenario = next(s for s in ctx.bench.scenarios() if s.name == name)
        for body in ctx.bench.bodies(scenario, 5):  # warm: SDK imported, scripts loaded
            client.post(path, json=body)
        bodies = ctx.bench.bodies(scenario, count)
        profiler = cProfile.Profile()
        profiler.enable()
        for body in bodies:
            response = client.post(path, json=body)
            if response.status_code != scenario.expect:
                raise RuntimeError(f"profile {name}: {response.status_code}")
        profiler.disable()
        text = io.StringIO()
        # The test client's own frames (werkzeug/test, flask/testing) are left out.
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(
            r"^(?!.*(werkzeug/test|flask/testing))", 30
        )
        report = text.getvalue()
        report = report[report.index("   ncalls") :] if "   ncalls" in report else report
        out.append(
            f"### {name}: {count} requests\n\n```text\n"
            + report.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "").rstrip()
            + "\n```"
        )
    return "\n\n".join(out)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # As bench/app.py does in the gunicorn workers; here, not at import: a test importing
    # this module must not silence the package's log lines for the tests after it.
    quiet_package_logs()
    if argv[:1] == ["chaos"]:  # bash scripts/bench.sh chaos: failover under faults
        from bench.chaos import main as chaos_main

        return chaos_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reps", type=int, help="reps of every scenario (5)")
    parser.add_argument("--seconds", type=int, help="seconds per scenario and rep (8)")
    parser.add_argument("--callgrind-requests", type=int, help="requests under callgrind (200)")
    parser.add_argument("--results", type=Path, help="also write the Markdown report here")
    parser.add_argument("--quick", action="store_true", help="smoke test: small counts")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else Sizes()
    for name in ("reps", "seconds", "callgrind_requests"):
        if getattr(args, name) is not None:
            setattr(sizes, name, getattr(args, name))
    load.wrk_binary()  # fail now, not after the set-up

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the benchmark ran longer than {TIME_LIMIT_SECONDS} s")

    signal.signal(signal.SIGALRM, expire)
    # A terminated run still stops what it started (the ExitStack below unwinds).
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.alarm(TIME_LIMIT_SECONDS)
    began = time.perf_counter()
    load_start = loadavg()
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        own_redis = RedisServer().start()
        stack.callback(own_redis.cleanup)
        providers = [Provider(0.0), Provider(PROVIDER_DELAY)]
        for provider in providers:
            stack.callback(provider.stop)
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        env = {
            "BENCH_REDIS_URL": own_redis.url,
            "BENCH_PREFIX": prefix,
            "BENCH_PROVIDER": providers[0].endpoint,
        }
        servers = []
        for factory, probe in (("create_app", "/sms/send"), ("create_baseline_app", "/base/get")):
            server = Gunicorn(factory, env, Path(own_redis.dir) / f"{factory}.log", probe)
            stack.callback(server.stop)
            servers.append(server)
        rds = redis.Redis.from_url(own_redis.url)
        bench = Bench(_service(driver_app(own_redis.url, prefix)), rds, prefix)
        ctx = Context(
            args,
            sizes,
            own_redis.url,
            rds,
            prefix,
            servers[0],
            servers[1],
            providers[0],
            providers[1],
            bench,
        )
        reserve_verdicts(ctx.table)
        machine_lines = machine(rds)
        expected = sizes.expected_seconds(len(bench.scenarios()))
        _progress(
            f"flask-smscode benchmark: {sizes.reps} rep(s) × {sizes.seconds} s per scenario, "
            f"wrk {CONNECTIONS} connections; expected duration about {expected / 60:.1f} min"
        )
        phases: list[tuple[str, Callable[[Context], None]]] = [
            ("HTTP load", phase_http),
            ("instructions (callgrind)", phase_instructions_start),
            ("memory", phase_memory_start),
            ("import cost", phase_import),
            ("notification", phase_notification),
            ("memory after expiry", phase_memory_finish),
            ("durability", phase_durability),
            ("verify layers", phase_layers),
            ("instructions (callgrind, waiting)", phase_instructions_wait),
        ]
        if args.results:
            phases.append(("profile", phase_profile))
        for name, run_phase in phases:
            _progress(f"{name} ({time.perf_counter() - began:.0f} s)")
            try:
                run_phase(ctx)
            except TimeoutError:
                raise
            except Exception as exc:  # one broken phase must not lose the others' figures
                failures.append(f"- {name} failed: {type(exc).__name__}: {exc}"[:800])
                _progress(failures[-1])
        signal.alarm(0)
        _progress(f"stopping the servers ({time.perf_counter() - began:.0f} s)")

    load_end = loadavg()
    machine_lines.append(
        f"- load average (1, 5, 15 min) at start: {load_start}; at end: {load_end} "
        f"(shared machine: CPU figures drift with it, instruction counts do not)"
    )
    rendered = ctx.table.render()
    elapsed = time.perf_counter() - began
    missed = ctx.table.missed()
    summary = (
        "all targets met"
        if not missed
        else f"{len(missed)} target(s) missed: "
        + "; ".join(missed)
        + " — the measured floor of each and why: bench/README.md, 'Targets not met: the "
        "measured floor'"
    )
    if failures:
        summary += f"; {len(failures)} phase(s) failed"
    print("\n".join(machine_lines))
    print(rendered)
    print("\nRedis commands per request:\n" + "\n".join(ctx.commands))
    print("\n" + "\n".join(ctx.notes + failures))
    print(f"\n{summary} ({elapsed:.0f} s)")
    if args.results:
        # Its own sections only: the replay's, chaos' and soak's stay (bench/results.py).
        write_sections(
            args.results, _report(machine_lines, rendered, ctx, failures, summary, elapsed, argv)
        )
    return 1 if failures else 0


def _report(
    machine_lines: list[str],
    table: str,
    ctx: Context,
    failures: list[str],
    summary: str,
    elapsed: float,
    argv: list[str],
) -> str:
    command = "bash scripts/bench.sh " + " ".join(argv)
    return "\n".join(
        [
            "# Benchmark results",
            "",
            f"Produced by `{command.strip()}` ({elapsed:.0f} s); what each figure means and "
            "why its target is what it is: [README.md](README.md).",
            "",
            "## Machine",
            "",
            *machine_lines,
            "",
            "## Results",
            "",
            "CPU figures: median (min–max) of the reps; ratios are the baseline's cost ÷ the "
            "package's (above 1: the package is cheaper), taken within each rep, then the "
            "median. Instruction counts are one callgrind run each (the same run after run).",
            "",
            table,
            "",
            f"**{summary}.**",
            "",
            *([*failures, ""] if failures else []),
            "Redis commands per request (`INFO commandstats` delta ÷ requests):",
            "",
            *ctx.commands,
            "",
            *ctx.notes,
            "",
            "## Profile",
            "",
            "cProfile through the package's app in one process (Flask test client, the same "
            "Redis and loopback provider), top functions by cumulative time; divide by the "
            "request count for one request.",
            "",
            ctx.profile,
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
