"""The stall bound under threads: with N threads sharing one RedisStore (a gunicorn gthread
worker), no call waits longer than SMSCODE_STORAGE_TIMEOUT_SECONDS plus
:data:`~flask_smscode.stores.redis.STALL_MARGIN_SECONDS` while Redis is frozen.

Measured before the fix: any Redis error reset the clock offset, so every thread's next call
re-measured it under one process-wide lock — a clock round trip (up to the timeout) before
the decision (another timeout), threads queueing on the lock: 503s of 2 s and 200s of 3 s
with a 1 s timeout and 4 threads.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from flask_smscode import StorageUnavailable
from flask_smscode.config import Limit
from flask_smscode.stores.base import ClientLimits
from flask_smscode.stores.redis import STALL_MARGIN_SECONDS, RedisStore
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.gunicorn_app import start_gunicorn, stop_quietly
from tests.servers.redis_server import RedisServer

pytestmark = pytest.mark.redis

TIMEOUT = 1.0
STALL = 3.0
THREADS = 8
LIMITS = (Limit(100_000, 3600, "100000 per 1 hour"),)
CLIENT = ClientLimits("203.0.113.7", LIMITS)


@dataclass(frozen=True)
class Call:
    started: float
    ended: float
    ok: bool

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@pytest.fixture
def frozen_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.resume()  # never leave a SIGSTOPped process behind
        server.cleanup()


def one_step(store: RedisStore, step: str, phone: str) -> None:
    """A send or a verify, as a user makes them (a fresh phone per send: no cooldown)."""
    if step == "send":
        store.reserve_send(
            phone,
            "login",
            "hash",
            uuid.uuid4().hex,
            ttl=300,
            cooldown=60,
            limits=LIMITS,
            client=CLIENT,
        )
    else:
        store.check_code(phone, "login", "hash", max_attempts=5, window=900, client=CLIENT)


def test_no_call_outlasts_the_timeout_while_redis_is_frozen(frozen_redis: RedisServer) -> None:
    store = RedisStore(frozen_redis.url, key_prefix="st", timeout=TIMEOUT)
    calls: list[Call] = []
    lock = threading.Lock()
    stop = threading.Event()

    def worker(w: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            for step in ("send", "verify"):
                started = time.monotonic()
                ok = True
                try:
                    one_step(store, step, f"+86137{w:02d}{n:06d}")
                except StorageUnavailable:
                    ok = False
                with lock:
                    calls.append(Call(started, time.monotonic(), ok))

    try:
        one_step(store, "send", "+8613799000000")  # warm: pool, scripts, clock offset
        threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(THREADS)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        frozen_at = time.monotonic()
        frozen_redis.pause()  # SIGSTOP
        time.sleep(STALL)
        frozen_redis.resume()  # SIGCONT
        thawed_at = time.monotonic()
        time.sleep(1.5 * TIMEOUT + 1.0)
        stop.set()
        for t in threads:
            t.join(10)
    finally:
        store.close()

    bound = TIMEOUT + STALL_MARGIN_SECONDS
    during = [c for c in calls if c.ended > frozen_at and c.started < thawed_at]
    assert sum(not c.ok for c in during) >= THREADS  # every thread met the stall
    slowest = max(c.seconds for c in during)
    assert slowest <= bound, sorted(round(c.seconds, 2) for c in during)[-10:]
    assert max(c.seconds for c in calls) <= bound
    # after SIGCONT (and the calls in flight then, at most one timeout), calls succeed again
    later = [c for c in calls if c.started > thawed_at + bound]
    assert later and all(c.ok for c in later), [c for c in later if not c.ok][:3]


HTTP_SLACK = 0.15  # the HTTP round trip on loopback, a new connection per request


def test_no_http_request_outlasts_the_timeout_under_gunicorn_threads(
    frozen_redis: RedisServer, sms_server: DysmsapiServer, tmp_path: Path
) -> None:
    """The same through real HTTP: one gunicorn gthread worker with 8 threads (the app's
    default SMSCODE_STORAGE_TIMEOUT_SECONDS, 1 s), 8 clients sending and verifying."""
    app = start_gunicorn(
        tmp_path,
        redis_url=frozen_redis.url,
        prefix="sth",
        provider=sms_server.endpoint,
        workers=1,
        worker_class="gthread",
        threads=THREADS,
    )
    calls: list[tuple[float, float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def client(w: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            phone = f"137{w:02d}{n:06d}"
            for path, body in (
                ("/sms/send", {"phone": phone}),
                ("/sms/verify", {"phone": phone, "code": "000000"}),
            ):
                started = time.monotonic()
                status, _ = app.request("POST", path, body)
                with lock:
                    calls.append((started, time.monotonic(), status))

    try:
        assert app.request("POST", "/sms/send", {"phone": "13799000000"})[0] == 200  # warm
        clients = [threading.Thread(target=client, args=(w,), daemon=True) for w in range(8)]
        for t in clients:
            t.start()
        time.sleep(0.5)
        frozen_at = time.monotonic()
        frozen_redis.pause()
        time.sleep(STALL)
        frozen_redis.resume()
        thawed_at = time.monotonic()
        time.sleep(1.5 * TIMEOUT + 1.0)
        stop.set()
        for t in clients:
            t.join(15)
    finally:
        stop_quietly(app)

    bound = TIMEOUT + STALL_MARGIN_SECONDS + HTTP_SLACK
    during = [c for c in calls if c[1] > frozen_at and c[0] < thawed_at]
    assert sum(c[2] == 503 for c in during) >= THREADS, [c[2] for c in during]
    assert {c[2] for c in calls} <= {200, 400, 503}, {c[2] for c in calls}
    durations = sorted(round(c[1] - c[0], 2) for c in calls)
    assert durations[-1] <= bound, durations[-10:]
    later = [c for c in calls if c[0] > thawed_at + bound]
    assert later and all(c[2] != 503 for c in later)
