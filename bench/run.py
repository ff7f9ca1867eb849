"""flask-smscode against its baselines, in one run: ``bash scripts/bench.sh``.

Starts a private redis-server, two loopback Dysmsapi servers (one answering at once, one
after 50 ms) and the app of :mod:`bench.app` under gunicorn (2 sync workers) on
127.0.0.1, drives HTTP load from this process, and prints one table: every figure is the
median (min–max) of ``--runs`` runs (default 3), next to its target. See bench/README.md
for what each figure means. Options: ``--results FILE`` also writes the Markdown report
with the machine and a profile; ``--quick`` is a smoke test with small counts.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import multiprocessing
import os
import platform
import pstats
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
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
    quiet_package_logs,
)
from tests.servers.redis_server import RedisServer, free_port

quiet_package_logs()  # as bench/app.py does in the gunicorn workers

WORKERS = 2  # gunicorn sync workers
CONCURRENCY = 4  # client connections in flight (two per worker: none idles)
PROVIDER_DELAY = 0.05  # seconds: the provider of the notification figure
NOTIFY_NUMBERS = 100_000
NOTIFY_CONCURRENCY = 4
LIVE_CODES = 100_000
IMPORT_SAMPLES = 7
TIME_LIMIT_SECONDS = 900  # the benchmark stops itself, whatever happens


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

    def cell(self, value: float) -> str:
        return f"{value:,.{self.digits}f}"

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def summary(self) -> str:
        if not self.values:
            return "n/a"
        text = f"{self.cell(self.median)} {self.unit}".rstrip()
        if len(self.values) > 1:
            text += f" ({self.cell(min(self.values))}–{self.cell(max(self.values))})"
        return text

    def verdict(self) -> str:
        if self.check is None or not self.values:
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

    def render(self) -> str:
        rows = [("Figure", "Median (min–max)", "Target", "")]
        section = None
        for figure in self.figures.values():
            if figure.section != section:
                section = figure.section
                rows.append((f"**{section}**", "", "", ""))
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


class Gunicorn:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        binary = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or "gunicorn"
        self.log = log
        self.process = subprocess.Popen(
            [
                binary,
                "--workers",
                str(WORKERS),
                "--worker-class",
                "sync",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--chdir",
                str(ROOT),
                "--timeout",
                "30",
                "--log-level",
                "warning",
                "bench.app:create_app()",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        self.address = ("127.0.0.1", self.port)
        deadline = time.monotonic() + 60
        probe = load.encode("127.0.0.1", self.port, "/base/get", {"phone": "13800000000"})
        while True:
            try:
                status, _ = load.request_once(self.address, probe, timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("gunicorn did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ------------------------------------------------------------------ seeding


class CaptureSender:
    """A sender that sends nothing and keeps each phone's code: the driver seeds live codes
    through the package's own send (same store, same secret as the gunicorn app)."""

    codes: ClassVar[dict[str, str]] = {}

    def __init__(self, config: object) -> None:
        pass

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> Any:
        from flask_smscode import SendReceipt

        CaptureSender.codes[phone] = code
        return SendReceipt("OK", out_id)


class Phones:
    """Fresh, valid mainland mobiles: every request gets a phone nothing else touched."""

    def __init__(self, head: str) -> None:
        self.head = head  # e.g. "13": 13XXXXXXXXX are all mobile numbers
        self.next = 0

    def take(self, count: int) -> list[str]:
        width = 11 - len(self.head)
        start, self.next = self.next, self.next + count
        return [f"{self.head}{i:0{width}d}" for i in range(start, start + count)]


def driver_app(redis_url: str, prefix: str) -> Flask:
    from flask_smscode import sms_bp

    app = Flask("bench-driver")
    app.config.update(app_config(redis_url, prefix, "127.0.0.1:1"))
    app.config["SMSCODE_SENDER"] = CaptureSender
    app.register_blueprint(sms_bp)
    return app


def seed_package_codes(service: Any, phones: list[str]) -> dict[str, str]:
    """A live code per phone through ``service.send`` (4 threads); phone -> code."""

    def one(phone: str) -> tuple[str, str]:
        result = service.send(phone, PURPOSE)
        return phone, CaptureSender.codes.pop(result.phone)

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, phones))


def seed_base_codes(client: redis.Redis, prefix: str, phones: list[str]) -> dict[str, str]:
    codes = {phone: f"{(index * 7919) % 1_000_000:06d}" for index, phone in enumerate(phones)}
    pipe = client.pipeline(transaction=False)
    for phone, code in codes.items():
        pipe.set(base_code_key(prefix, phone), code, ex=BASE_TTL_SECONDS)
    pipe.execute()
    return codes


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


# ------------------------------------------------------------------ scenarios


@dataclass
class Scenario:
    name: str
    path: str
    expect: int  # the status every answer must have
    bodies: Callable[[int], list[dict[str, Any]]]  # n -> request bodies (seeds as needed)


def make_scenarios(service: Any, rds: redis.Redis, prefix: str) -> dict[str, Scenario]:
    phones = Phones("13")
    base_phones = Phones("15")  # 15[0-35-9]: still valid for the baselines' regex

    def package_verify(right: bool) -> Callable[[int], list[dict[str, Any]]]:
        def bodies(n: int) -> list[dict[str, Any]]:
            codes = seed_package_codes(service, phones.take(n))
            return [
                {"phone": p, "code": c if right else wrong(c), "purpose": PURPOSE}
                for p, c in codes.items()
            ]

        return bodies

    def base_verify(right: bool) -> Callable[[int], list[dict[str, Any]]]:
        def bodies(n: int) -> list[dict[str, Any]]:
            codes = seed_base_codes(rds, prefix, base_phones.take(n))
            return [{"phone": p, "code": c if right else wrong(c)} for p, c in codes.items()]

        return bodies

    def plain(source: Phones) -> Callable[[int], list[dict[str, Any]]]:
        return lambda n: [{"phone": p, "purpose": PURPOSE} for p in source.take(n)]

    return {
        s.name: s
        for s in (
            Scenario("GET baseline", "/base/get", 200, plain(base_phones)),
            Scenario("verify, right code", "/sms/verify", 200, package_verify(True)),
            Scenario("hand-written verify, right code", "/base/verify", 200, base_verify(True)),
            Scenario("verify, wrong code", "/sms/verify", 400, package_verify(False)),
            Scenario("hand-written verify, wrong code", "/base/verify", 400, base_verify(False)),
            Scenario("SendSms baseline", "/base/sendsms", 200, plain(base_phones)),
            Scenario("send", "/sms/send", 200, plain(phones)),
        )
    }


def drive(app: Gunicorn, scenario: Scenario, n: int, concurrency: int) -> load.LoadResult:
    raws = [load.encode(*app.address, scenario.path, body) for body in scenario.bodies(n)]
    result = load.run(app.address, raws, concurrency)
    unexpected = sum(
        count for status, count in result.statuses.items() if status != scenario.expect
    )
    if unexpected:
        raise RuntimeError(
            f"{scenario.name}: {unexpected} of {n} answers were not "
            f"{scenario.expect}: {dict(result.statuses)} (a throttle or an "
            "error would be measured instead of the decision)"
        )
    return result


# ------------------------------------------------------------------ Redis round trips


def commandstats(client: redis.Redis) -> Counter[str]:
    stats = client.info("commandstats")
    return Counter(
        {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    )


def redis_traffic(
    rds: redis.Redis, redis_url: str, app: Gunicorn, scenario: Scenario, n: int
) -> tuple[float, float, Counter[str]]:
    """Round trips and commands per request of ``n`` sequential requests.

    Round trips: commands the app's connections sent, from MONITOR (a script call is one;
    the commands a script runs show as ``lua`` and are not round trips). Commands: the
    ``INFO commandstats`` delta, script-internal commands included.
    """
    raws = [load.encode(*app.address, scenario.path, body) for body in scenario.bodies(n)]
    token = uuid.uuid4().hex
    seen: list[dict[str, Any]] = []
    ready = threading.Event()

    def watch() -> None:
        client = redis.Redis.from_url(redis_url)
        with client.monitor() as monitor:
            ready.set()
            for entry in monitor.listen():
                if token in entry["command"]:
                    return
                seen.append(entry)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    ready.wait(10)
    before = commandstats(rds)
    for raw in raws:
        status, _ = load.request_once(app.address, raw)
        if status != scenario.expect:
            raise RuntimeError(f"{scenario.name}: answered {status}")
    after = commandstats(rds)
    rds.echo(token)
    watcher.join(10)
    delta = after - before
    delta["info"] -= 1  # our own INFO commandstats
    delta = +delta
    trips = sum(
        1
        for e in seen
        if e.get("client_type") != "lua" and not str(e["command"]).upper().startswith("INFO")
    )  # ours, not the app's
    return trips / n, sum(delta.values()) / n, delta


# ------------------------------------------------------------------ memory


def memory_per_live_code(rds: redis.Redis, app: Gunicorn, prefix: str) -> tuple[int, list[str]]:
    """MEMORY USAGE over every key of one phone after one send through the app."""
    phone = "18912345678"
    status, _ = load.request_once(
        app.address, load.encode(*app.address, "/sms/send", {"phone": phone, "purpose": PURPOSE})
    )
    if status != 200:
        raise RuntimeError(f"send for the memory figure answered {status}")
    total, listed = 0, []
    for key in sorted(rds.scan_iter(match=f"{prefix}*", count=10_000)):
        name = key.decode()
        usage = int(rds.memory_usage(key, samples=0) or 0)
        if phone[-10:] in name:
            total += usage
            listed.append(f"`{name}` ({rds.type(key).decode()}): {usage} B")
        elif ":ip:" in name or "127.0.0.1" in name:
            listed.append(
                f"`{name}` ({rds.type(key).decode()}, per client, not per phone): {usage} B"
            )
    return total, listed


def used_memory_for_live_codes(redis_url: str, count: int) -> tuple[float, float, str]:
    """``used_memory`` growth for ``count`` live codes (fresh prefix, default per-phone
    limits, no per-IP key); bytes per code, seconds, and the API used to make them."""
    prefix = f"benchmem{uuid.uuid4().hex[:6]}"
    service = _service(driver_app(redis_url, prefix))
    rds = redis.Redis.from_url(redis_url)
    _, via = _live_code_maker(service)
    rds.delete(*rds.keys(f"{prefix}*"))  # the probe's keys; scripts stay loaded
    before = int(rds.info("memory")["used_memory"])
    started = time.perf_counter()
    # Two processes of four threads: the Python side, not Redis, is the limit.
    ranges = [
        (redis_url, prefix, via, start, min(start + count // 2, count + 1))
        for start in (1, 1 + count // 2)
    ]
    with multiprocessing.get_context("spawn").Pool(len(ranges)) as pool:
        pool.map(_make_live_codes, ranges)
    elapsed = time.perf_counter() - started
    after = int(rds.info("memory")["used_memory"])
    CaptureSender.codes.clear()
    for chunk in _chunks([k for k in rds.scan_iter(match=f"{prefix}*", count=10_000)], 5000):
        rds.unlink(*chunk)
    return (after - before) / count, elapsed, via


def _make_live_codes(job: tuple[str, str, str, int, int]) -> None:
    """In a worker process: live codes for ``+8618<i>`` with ``start <= i < stop``."""
    redis_url, prefix, via, start, stop = job
    make, _ = _live_code_maker(_service(driver_app(redis_url, prefix)), via)
    with ThreadPoolExecutor(4) as pool:
        for _ in pool.map(make, (f"+8618{i:09d}" for i in range(start, stop)), chunksize=256):
            pass


def _live_code_maker(service: Any, via: str | None = None) -> tuple[Callable[[str], None], str]:
    """The fastest way the running code offers to make a live code for an E.164 number:
    the store's ``reserve_send`` as the service calls it (no parsing, no sender), if its
    signature is the one this benchmark knows (probed once, with ``via`` None); else the
    public ``service.send``."""
    settings = service.settings

    def via_store(e164: str) -> None:
        decision = service.store.reserve_send(
            e164,
            PURPOSE,
            service._hash(e164, PURPOSE, "123456"),
            uuid.uuid4().hex[:16],
            ttl=settings.code_ttl,
            cooldown=settings.resend_interval,
            limits=settings.phone_limits,
            guard=service.guard.request(e164),
        )
        if getattr(decision, "refused_by", None) is not None or decision is True:
            raise RuntimeError(f"the store refused a live code: {decision!r}")

    def via_service(e164: str) -> None:
        service.send(e164, PURPOSE)

    if via is not None:
        return (via_store if via == "store.reserve_send" else via_service), via
    try:
        via_store("+8618000000000")
        return via_store, "store.reserve_send"
    except (AttributeError, TypeError):
        via_service("+8618000000000")
        return via_service, "service.send"


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _service(app: Flask) -> Any:
    from flask_smscode import get_service

    return get_service(app)


# ------------------------------------------------------------------ notification


def notification(provider: Provider, run: int, skip_invalid: bool) -> tuple[float, float, float]:
    """Wall time, time to the first call's arrival, CPU seconds of this process (parsing,
    the SDK's signing, HTTP; all threads): 100,000 numbers, 1000 a call,
    4 in flight, through ``AliyunSms.send_message`` (warm client, as in a long-lived app)."""
    from flask_smscode import AliyunSms

    sms = AliyunSms(
        "test-key-id",
        "test-key-secret",
        "TestSign",
        endpoint=provider.endpoint,
        protocol="http",
        max_concurrency=NOTIFY_CONCURRENCY,
    )
    params = {"name": "张三", "time": "22:00"}
    sms.send_message(["13800138000"], params, "SMS_NOTIFY")  # SDK imported, pool warm
    head = "186" if skip_invalid else "187"
    numbers = [f"{head}{(run * NOTIFY_NUMBERS + i) % 10**8:08d}" for i in range(NOTIFY_NUMBERS)]
    provider.control("reset")
    cpu = time.process_time()
    started = time.time()
    answers = sms.send_message(numbers, params, "SMS_NOTIFY", skip_invalid=skip_invalid)
    wall = time.time() - started
    cpu = time.process_time() - cpu
    stats = provider.control("stats")
    if not all(a.ok for a in answers) or stats["numbers"] != NOTIFY_NUMBERS:
        raise RuntimeError(f"notification: {stats}")
    return wall, float(stats["first_at"]) - started, cpu


# ------------------------------------------------------------------ import cost

_IMPORT_PROBE = """
import json, sys, time
t0 = time.perf_counter(); import flask
t1 = time.perf_counter(); import flask_smscode
t2 = time.perf_counter(); loaded = [m for m in ("aliyunsdkcore", "limits", "redis",
    "phonenumbers") if m in sys.modules]
from flask_smscode import sms_bp, AliyunSms
t3 = time.perf_counter()
print(json.dumps({"flask": t1 - t0, "package": t2 - t1, "app": t3 - t1, "loaded": loaded,
                  "sdk": "aliyunsdkcore" in sys.modules}))
"""


def import_costs() -> list[dict[str, Any]]:
    samples = []
    for _ in range(IMPORT_SAMPLES):
        out = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        samples.append(json.loads(out))
    return samples


# ------------------------------------------------------------------ profile


def profile(redis_url: str, prefix: str, provider: Provider, count: int = 100) -> str:
    """cProfile of ``count`` verifies (right code) and ``count`` sends through the Flask app
    in this process (test client; same Redis, same loopback provider)."""
    from bench.app import create_app

    os.environ.update(
        BENCH_REDIS_URL=redis_url, BENCH_PREFIX=prefix, BENCH_PROVIDER=provider.endpoint
    )
    app = create_app()
    client = app.test_client()
    service = _service(driver_app(redis_url, prefix))
    phones = Phones("16")  # 16[25-7]X: mobile
    phones.next = 6_000_000_000 // 10
    out = []
    for label, path, make in (
        (
            "verify (right code)",
            "/sms/verify",
            lambda: [
                {"phone": p, "code": c}
                for p, c in seed_package_codes(service, phones.take(count)).items()
            ],
        ),
        (
            "send (provider answering at once)",
            "/sms/send",
            lambda: [{"phone": p} for p in phones.take(count)],
        ),
    ):
        for body in make()[:5]:  # warm: SDK imported, scripts loaded, pools open
            client.post(path, json=body)
        # Without the profiler first (its own cost would inflate the figures): CPU and wall
        # time of one request; then the profile, on the wall clock.
        bodies = make()
        cpu, wall = time.process_time(), time.perf_counter()
        for body in bodies:
            client.post(path, json=body)
        cpu = (time.process_time() - cpu) / count * 1000
        wall = (time.perf_counter() - wall) / count * 1000
        bodies = make()
        profiler = cProfile.Profile()
        profiler.enable()
        for body in bodies:
            response = client.post(path, json=body)
            if response.status_code != 200:
                raise RuntimeError(f"profile {label}: {response.status_code}")
        profiler.disable()
        text = io.StringIO()
        # The test client's own frames (werkzeug/test, flask/testing) are left out.
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(
            r"^(?!.*(werkzeug/test|flask/testing))", 30
        )
        body = text.getvalue()
        body = body[body.index("   ncalls") :] if "   ncalls" in body else body
        out.append(
            f"### {label}: {count} requests\n\nWithout the profiler: {wall:.2f} ms "
            f"wall, {cpu:.2f} ms CPU of this process a request (test client "
            f"included).\n\n```text\n"
            + body.replace(str(ROOT) + "/", "").replace(sys.prefix + "/", "").rstrip()
            + "\n```"
        )
    return "\n\n".join(out)


# ------------------------------------------------------------------ machine


def machine(rds: redis.Redis) -> list[str]:
    def grep(path: str, key: str) -> str:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
        return "?"

    import gunicorn

    server = rds.info("server")
    ram = grep("/proc/meminfo", "MemTotal")
    return [
        f"- CPUs (nproc): {os.cpu_count()}, {grep('/proc/cpuinfo', 'model name')}",
        f"- RAM: {int(ram.split()[0]) / 1024 / 1024:.1f} GiB" if ram != "?" else "- RAM: ?",
        f"- {platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"gunicorn {gunicorn.__version__}, redis-py {redis.__version__}",
        f"- Redis {server['redis_version']} ({rds.info('memory').get('mem_allocator', '?')}), "
        "private instance, no persistence",
        f"- load average at start: {os.getloadavg()[0]:.2f} (the machine is shared: "
        "figures are medians of runs interleaved across scenarios)",
    ]


# ------------------------------------------------------------------ main


@dataclass
class Context:
    """What the phases share: the running processes, the table and the notes."""

    args: argparse.Namespace
    redis_url: str
    rds: redis.Redis
    prefix: str
    app: Gunicorn
    instant: Provider
    slow: Provider
    table: Table = field(default_factory=Table)
    commands: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    profile: str = ""


def phase_http(ctx: Context) -> None:
    """Redis traffic and HTTP load, scenarios interleaved within each run."""
    service = _service(driver_app(ctx.redis_url, ctx.prefix))
    scenarios = make_scenarios(service, ctx.rds, ctx.prefix)
    for scenario in scenarios.values():  # warm both workers: imports, pools, scripts
        drive(ctx.app, scenario, 40, CONCURRENCY)
    table, args = ctx.table, ctx.args
    http = f"HTTP: gunicorn {WORKERS} sync workers, {CONCURRENCY} connections"
    trips = "Redis per request"
    for run in range(args.runs):
        _progress(f"run {run + 1}/{args.runs}: Redis traffic")
        for scenario in scenarios.values():
            if scenario.path == "/base/sendsms":
                continue
            per_trip, per_command, delta = redis_traffic(
                ctx.rds, ctx.redis_url, ctx.app, scenario, 20
            )
            single = scenario.path.startswith("/sms/")
            table.add(
                trips,
                f"{scenario.name}: round trips",
                per_trip,
                target="1 (single Redis)" if single else "",
                check=(lambda v: v <= 1.0) if single else None,
                digits=2,
            )
            table.add(trips, f"{scenario.name}: commands", per_command, digits=2)
            if run == 0:
                shown = ", ".join(f"{name} {calls / 20:g}" for name, calls in sorted(delta.items()))
                ctx.commands.append(f"- {scenario.name}: {shown}")
        _progress(f"run {run + 1}/{args.runs}: HTTP load")
        results: dict[str, load.LoadResult] = {}
        for scenario in scenarios.values():
            n = args.send_requests if "send" in scenario.path else args.requests
            results[scenario.name] = drive(ctx.app, scenario, n, CONCURRENCY)
        for name, result in results.items():
            table.add(http, f"{name}: requests/s", result.rps, "req/s", digits=0)
            table.add(http, f"{name}: p50", result.p50, "ms", digits=2)
            table.add(http, f"{name}: p99", result.p99, "ms", digits=2)
        ratios = "Ratios (per run, then median)"
        get = results["GET baseline"].rps
        for outcome in ("right", "wrong"):
            mine = results[f"verify, {outcome} code"].rps
            table.add(
                ratios,
                f"verify ({outcome} code) ÷ GET baseline",
                mine / get,
                "×",
                target="≥ 0.80×",
                check=lambda v: v >= 0.8,
                digits=2,
            )
            table.add(
                ratios,
                f"verify ({outcome} code) ÷ hand-written verify",
                mine / results[f"hand-written verify, {outcome} code"].rps,
                "×",
                target="> 1.00×",
                check=lambda v: v > 1.0,
                digits=2,
            )
        table.add(
            ratios,
            "send ÷ SendSms baseline",
            results["send"].rps / results["SendSms baseline"].rps,
            "×",
            target="≥ 0.80×",
            check=lambda v: v >= 0.8,
            digits=2,
        )


def phase_memory(ctx: Context) -> None:
    mem = "Redis memory"
    per_phone, ctx.keys = memory_per_live_code(ctx.rds, ctx.app, ctx.prefix)
    ctx.table.add(
        mem,
        "MEMORY USAGE, all keys of one phone after one send",
        per_phone,
        "B",
        target="≤ 200 B",
        check=lambda v: v <= 200,
        digits=0,
    )
    base_key = base_code_key(ctx.prefix, "15999999999")
    ctx.rds.set(base_key, "123456", ex=BASE_TTL_SECONDS)
    ctx.table.add(
        mem,
        "hand-written baseline: one code key (SET ... EX)",
        float(ctx.rds.memory_usage(base_key, samples=0) or 0),
        "B",
        digits=0,
    )
    per_code, seconds, via = used_memory_for_live_codes(ctx.redis_url, LIVE_CODES)
    ctx.table.add(mem, f"used_memory growth ÷ {LIVE_CODES:,} live codes", per_code, "B", digits=0)
    ctx.table.add(
        mem,
        f"time to create {LIVE_CODES:,} live codes ({via}, 2 processes × 4 threads)",
        seconds,
        "s",
        digits=1,
    )


def phase_notification(ctx: Context) -> None:
    calls = -(-NOTIFY_NUMBERS // 1000)
    floor = -(-calls // NOTIFY_CONCURRENCY) * PROVIDER_DELAY
    notify = f"Notification: {NOTIFY_NUMBERS:,} numbers, 50 ms provider (floor {floor:.2f} s)"
    for run in range(ctx.args.runs):
        for skip_invalid in (False, True):
            mode = "skip_invalid=True" if skip_invalid else "default (all checked first)"
            wall, first, cpu = notification(ctx.slow, run, skip_invalid)
            ctx.table.add(notify, f"{mode}: wall time", wall, "s", digits=2)
            ctx.table.add(
                notify,
                f"{mode}: wall ÷ floor",
                wall / floor,
                "×",
                target="≤ 1.20×",
                check=lambda v: v <= 1.2,
                digits=2,
            )
            ctx.table.add(notify, f"{mode}: time to first call", first * 1000, "ms", digits=0)
            ctx.table.add(notify, f"{mode}: client CPU (all threads)", cpu, "s", digits=2)


def phase_import(ctx: Context) -> None:
    samples = import_costs()
    imp = f"Import (fresh interpreters, median of {IMPORT_SAMPLES})"
    ctx.table.add(
        imp,
        "`import flask` alone",
        statistics.median(s["flask"] for s in samples) * 1000,
        "ms",
        digits=1,
    )
    ctx.table.add(
        imp,
        "`import flask_smscode` after `import flask`",
        statistics.median(s["package"] for s in samples) * 1000,
        "ms",
        target="≤ 40 ms",
        check=lambda v: v <= 40,
        digits=1,
    )
    ctx.table.add(
        imp,
        "`from flask_smscode import sms_bp, AliyunSms` after `import flask`",
        statistics.median(s["app"] for s in samples) * 1000,
        "ms",
        target="≤ 40 ms",
        check=lambda v: v <= 40,
        digits=1,
    )
    loaded = samples[0]["loaded"]
    ctx.notes.append(
        f"- `import flask_smscode` loads (of aliyunsdkcore, limits, redis, "
        f"phonenumbers): {', '.join(loaded) or 'none'}; after `from "
        f"flask_smscode import sms_bp, AliyunSms`, aliyunsdkcore is loaded: "
        f"{samples[0]['sdk']}"
    )


def phase_profile(ctx: Context) -> None:
    ctx.profile = profile(ctx.redis_url, ctx.prefix, ctx.instant)


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["chaos"]:  # bash scripts/bench.sh chaos: failover under faults
        from bench.chaos import main as chaos_main

        return chaos_main(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--requests", type=int, default=1500, help="requests per Redis-only scenario and run"
    )
    parser.add_argument(
        "--send-requests", type=int, default=600, help="requests per send scenario and run"
    )
    parser.add_argument("--results", type=Path, help="also write the Markdown report here")
    parser.add_argument("--quick", action="store_true", help="smoke test: small counts")
    args = parser.parse_args(argv)
    global NOTIFY_NUMBERS, LIVE_CODES, IMPORT_SAMPLES
    if args.quick:
        args.runs, args.requests, args.send_requests = 1, 100, 50
        NOTIFY_NUMBERS, LIVE_CODES, IMPORT_SAMPLES = 5000, 2000, 2

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"the benchmark ran longer than {TIME_LIMIT_SECONDS} s")

    signal.signal(signal.SIGALRM, expire)
    signal.alarm(TIME_LIMIT_SECONDS)
    began = time.perf_counter()
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        own_redis = RedisServer().start()
        stack.callback(own_redis.cleanup)
        providers = [Provider(0.0), Provider(PROVIDER_DELAY)]
        for provider in providers:
            stack.callback(provider.stop)
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        app = Gunicorn(
            {
                "BENCH_REDIS_URL": own_redis.url,
                "BENCH_PREFIX": prefix,
                "BENCH_PROVIDER": providers[0].endpoint,
            },
            Path(own_redis.dir) / "gunicorn.log",
        )
        stack.callback(app.stop)
        ctx = Context(
            args, own_redis.url, redis.Redis.from_url(own_redis.url), prefix, app, *providers
        )
        machine_lines = machine(ctx.rds)
        _progress(
            f"flask-smscode benchmark: gunicorn {WORKERS} sync workers, {CONCURRENCY} "
            f"client connections, {args.runs} run(s)"
        )
        phases: list[tuple[str, Callable[[Context], None]]] = [
            ("HTTP load", phase_http),
            ("memory", phase_memory),
            ("notification", phase_notification),
            ("import cost", phase_import),
        ]
        if args.results:
            phases.append(("profile", phase_profile))
        for name, run_phase in phases:
            _progress(name)
            try:
                run_phase(ctx)
            except TimeoutError:
                raise
            except Exception as exc:  # one broken phase must not lose the others' figures
                failures.append(f"- {name} failed: {type(exc).__name__}: {exc}"[:600])
                _progress(failures[-1])
        signal.alarm(0)

    rendered = ctx.table.render()
    elapsed = time.perf_counter() - began
    missed = ctx.table.missed()
    summary = (
        "all targets met" if not missed else f"{len(missed)} target(s) missed: " + "; ".join(missed)
    )
    if failures:
        summary += f"; {len(failures)} phase(s) failed"
    print(rendered)
    print("\nRedis commands per request (first run):\n" + "\n".join(ctx.commands))
    print("\nKeys after one send:\n" + "\n".join(f"- {k}" for k in ctx.keys))
    print("\n" + "\n".join(ctx.notes + failures))
    print(f"\n{summary} ({elapsed:.0f} s)")
    if args.results:
        # Its own sections only: the replay's and the chaos run's stay (bench/results.py).
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
    argv: list[str] | None,
) -> str:
    command = "bash scripts/bench.sh " + " ".join(argv if argv is not None else sys.argv[1:])
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
            "Every figure is the median (min–max) of the runs; ratios are taken within each run.",
            "",
            table,
            "",
            f"**{summary}.**",
            "",
            *([*failures, ""] if failures else []),
            "Redis commands per request (first run, `INFO commandstats` delta ÷ requests):",
            "",
            *ctx.commands,
            "",
            "Keys after one send to a fresh phone (`MEMORY USAGE key SAMPLES 0`):",
            "",
            *[f"- {k}" for k in ctx.keys],
            "",
            *ctx.notes,
            "",
            "## Profile",
            "",
            "cProfile through the Flask app in one process (Flask test client, the same Redis "
            "and loopback provider), top functions by cumulative time; divide by the request "
            "count for one request.",
            "",
            ctx.profile,
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
