"""Speed and memory figures of flask-smscode, printed against the project's targets.

Run: ``bash scripts/bench.sh`` (or ``.venv/bin/python benchmarks/bench.py``). It starts a
private redis-server and the loopback Dysmsapi server from ``tests/``; set ``REDIS_URL``
to measure another Redis (only keys under a random prefix are written, then deleted).

Targets (on the 2-core reference machine, one process, one thread):
- package overhead of send + verify, no SMS: >= 1,000 pairs/s on Redis (three Lua calls and
  a token per pair), >= 2,500 on memory:// (phone parsing and HMACs dominate)
- the full HTTP send through the real SDK to the loopback server, which runs in the same
  process and verifies every signature: >= 150 sends/s (Alibaba's default SendSms QPS
  limit per account is far lower, so one worker is never the bottleneck)
- memory per phone with a live code: <= 1 KiB in Redis, <= 2 KiB in memory://
- ``import flask_smscode``: <= 0.5 s (the Alibaba SDK is imported lazily)
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis
from flask import Flask

from flask_smscode import SendReceipt, get_service, sms_bp
from tests.dysmsapi_server import DysmsapiServer
from tests.redis_server import RedisServer

PAIRS = 2000
HTTP_SENDS = 500
LIVE_CODES = 10_000
RESULTS: list[tuple[str, float, str, bool]] = []


class NullSender:
    """Sends nothing: measures the package alone."""

    last_code = ""

    def __init__(self, config: object) -> None:
        pass

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        NullSender.last_code = code
        return SendReceipt("OK", out_id)


def make_app(uri: str, prefix: str, **config: object) -> Flask:
    app = Flask("bench")
    app.config.update(SECRET_KEY="bench", TESTING=True, SMSCODE_STORAGE_URI=uri,
                      SMSCODE_KEY_PREFIX=prefix, SMSCODE_RESEND_INTERVAL_SECONDS=0,
                      SMSCODE_PHONE_LIMITS="", SMSCODE_IP_SEND_LIMITS="",
                      SMSCODE_IP_VERIFY_LIMITS="")
    app.config.update(config)
    app.register_blueprint(sms_bp)
    return app


def phone(i: int) -> str:
    return f"1380013{i % 10000:04d}"


def record(name: str, value: float, unit: str, target: float, higher_is_better: bool) -> None:
    ok = value >= target if higher_is_better else value <= target
    RESULTS.append((name, value, unit, ok))
    sign = ">=" if higher_is_better else "<="
    print(f"{name:<52} {value:>10.1f} {unit:<10} target {sign} {target:g}  "
          f"{'ok' if ok else 'MISSED'}")


def bench_service(uri: str, label: str, target: float) -> None:
    app = make_app(uri, f"bench-{uuid.uuid4().hex[:8]}",
                   SMSCODE_SENDER=NullSender)
    service = get_service(app)
    latencies = []
    with app.app_context():
        started = time.perf_counter()
        for i in range(PAIRS):
            t0 = time.perf_counter()
            service.send(phone(i), "login")
            service.verify(phone(i), NullSender.last_code, "login")
            latencies.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - started
    record(f"send+verify pairs/s, {label}", PAIRS / elapsed, "pairs/s", target, True)
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    print(f"{'  p50 / p99 per pair':<52} {statistics.median(latencies) * 1000:>10.2f} ms"
          f"  / {p99:.2f} ms")
    service.store.close()


def bench_http(uri: str, sms_server: DysmsapiServer) -> None:
    app = make_app(uri, f"bench-{uuid.uuid4().hex[:8]}", SMSCODE_SENDER="aliyun",
                   SMSCODE_ALIYUN_ACCESS_KEY_ID="test-key-id",
                   SMSCODE_ALIYUN_ACCESS_KEY_SECRET="test-key-secret",
                   SMSCODE_ALIYUN_SIGN_NAME="TestSign",
                   SMSCODE_ALIYUN_TEMPLATE_CODE="SMS_123456789",
                   SMSCODE_ALIYUN_ENDPOINT=sms_server.endpoint, SMSCODE_ALIYUN_PROTOCOL="http")
    client = app.test_client()
    client.post("/sms/send", json={"phone": phone(9999)})  # warm the SDK import and pool
    started = time.perf_counter()
    for i in range(HTTP_SENDS):
        response = client.post("/sms/send", json={"phone": phone(i)})
        assert response.status_code == 200, response.get_json()
    elapsed = time.perf_counter() - started
    record("HTTP /sms/send via SDK to loopback server, Redis", HTTP_SENDS / elapsed,
           "sends/s", 150, True)


def bench_redis_memory(url: str) -> None:
    app = make_app(url, f"bench-{uuid.uuid4().hex[:8]}",
                   SMSCODE_SENDER=NullSender,
                   SMSCODE_RESEND_INTERVAL_SECONDS=60, SMSCODE_PHONE_LIMITS="5/hour;10/day")
    service = get_service(app)
    client = redis.Redis.from_url(url)
    before = client.info("memory")["used_memory"]
    with app.app_context():
        for i in range(LIVE_CODES):
            service.send(f"139{i:08d}", "login")
    after = client.info("memory")["used_memory"]
    record("Redis memory per phone with a live code", (after - before) / LIVE_CODES, "bytes",
           1024, False)
    keys = list(client.scan_iter(match=f"{service.settings.key_prefix}*", count=5000))
    for start in range(0, len(keys), 5000):
        client.delete(*keys[start:start + 5000])
    print(f"{'  keys per phone (code, cooldown, 2 counters)':<52} "
          f"{len(keys) / LIVE_CODES:>10.1f}")
    service.store.close()


def bench_memory_store() -> None:
    app = make_app("memory://", "bench", SMSCODE_SENDER=NullSender,
                   SMSCODE_RESEND_INTERVAL_SECONDS=60, SMSCODE_PHONE_LIMITS="5/hour;10/day")
    service = get_service(app)
    with app.app_context():
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        for i in range(LIVE_CODES):
            service.send(f"139{i:08d}", "login")
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    record("memory:// bytes per phone with a live code", grown / LIVE_CODES, "bytes", 2048,
           False)


def bench_import() -> None:
    code = "import time; t=time.perf_counter(); import flask_smscode; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    record("import flask_smscode", float(out.stdout) * 1000, "ms", 500, False)


def main() -> int:
    print(f"flask-smscode benchmark, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    own = None
    url = os.environ.get("REDIS_URL")
    if not url:
        own = RedisServer().start()
        url = own.url
    sms_server = DysmsapiServer()
    sms_server.start()
    try:
        bench_import()
        bench_service("memory://", "memory://", 2500)
        bench_service(url, "Redis", 1000)
        bench_http(url, sms_server)
        bench_redis_memory(url)
        bench_memory_store()
    finally:
        sms_server.stop()
        if own is not None:
            own.cleanup()
    missed = [name for name, _, _, ok in RESULTS if not ok]
    print(f"\n{len(RESULTS) - len(missed)} of {len(RESULTS)} targets met"
          + (f"; missed: {', '.join(missed)}" if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
