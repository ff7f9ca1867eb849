"""Faults: Redis stopped mid-suite or hanging. Fail closed, fast, and lose nothing."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from flask_smscode import StorageUnavailable, get_service, send_code
from tests.helpers import PHONE, assert_error, send, verify, wrong
from tests.servers.failover_traffic import TRAFFIC_CONFIG, Traffic, fresh_round
from tests.servers.redis_server import RedisServer

# Every test here brings its own Redis (or none) and overrides SMSCODE_STORAGE_URI, so
# ``make_app`` is built once, not once per store of the behaviour suite.
pytestmark = [
    pytest.mark.redis,
    pytest.mark.parametrize("store_uri", ["memory"], ids=["own"], indirect=True),
]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A redis-server this test may stop and restart."""
    server = RedisServer().start()
    yield server
    server.cleanup()


def assert_unavailable(response) -> None:
    body = assert_error(response, 503, "storage_unavailable")
    assert int(response.headers["Retry-After"]) > 0
    assert body["retry_after"] == int(response.headers["Retry-After"])


def test_redis_stopped_mid_suite(make_app, sms_server, own_redis):
    app = make_app(SMSCODE_STORAGE_URI=own_redis.url)
    client = app.test_client()
    assert send(client).status_code == 200
    code = sms_server.last_code(PHONE)

    own_redis.stop()
    started = time.monotonic()
    assert_unavailable(send(client, "13900139000"))
    assert_unavailable(verify(client, code))
    assert time.monotonic() - started < 2.5  # about a second each at most, no retry loop
    assert len(sms_server.sent) == 1  # nothing was sent while the store was down
    with app.app_context(), pytest.raises(StorageUnavailable):
        send_code("13900139000")

    own_redis.start()  # same port; the pool reconnects by itself
    assert send(client, "13900139000").status_code == 200
    other = sms_server.last_code("13900139000")
    assert verify(client, other, phone="13900139000").status_code == 200
    assert len(sms_server.sent) == 2


@pytest.fixture
def black_hole() -> Iterator[int]:
    """A port that accepts TCP connections and never answers (a hung Redis)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


def test_hanging_redis_answers_503_within_about_a_second(make_app, sms_server, black_hole):
    client = make_app(SMSCODE_STORAGE_URI=f"redis://127.0.0.1:{black_hole}/0").test_client()
    started = time.monotonic()
    assert_unavailable(send(client))
    assert time.monotonic() - started < 2.5
    assert sms_server.sent == []


def test_storage_timeout_is_configurable(make_app, sms_server, black_hole):
    client = make_app(
        SMSCODE_STORAGE_URI=f"redis://127.0.0.1:{black_hole}/0", SMSCODE_STORAGE_TIMEOUT_SECONDS=0.2
    ).test_client()
    started = time.monotonic()
    assert_unavailable(verify(client, "123456"))
    assert time.monotonic() - started < 1.0


def test_redis_lost_while_the_provider_rejects(make_app, sms_server, own_redis):
    """The provider refuses and Redis is gone before the refund: the client still gets the
    provider's answer (not a 500), and the unsent code simply expires."""
    app = make_app(SMSCODE_STORAGE_URI=own_redis.url)

    def stop_redis_then_refuse(*_args, **_kwargs):
        own_redis.stop()
        return original(*_args, **_kwargs)

    with app.app_context():
        sender = get_service().sender
    original = sender.send
    sender.send = stop_redis_then_refuse
    sms_server.fail_next("isv.AMOUNT_NOT_ENOUGH")
    assert_error(send(app.test_client()), 502, "provider_error")


# -- a stalled Redis leaves no half-state ------------------------------------------------------

STALL_TIMEOUT = 0.3  # SMSCODE_STORAGE_TIMEOUT_SECONDS for the stall tests
OTHER = "13900139000"


class Stall:
    """Freeze ``server`` longer than the storage timeout: SIGSTOP/SIGCONT of the process, or
    ``CLIENT PAUSE ... ALL`` (commands queue, then run when the pause ends). Either way the
    app's command has reached Redis and will be executed late — after its 503."""

    def __init__(self, server: RedisServer, how: str, seconds: float = 1.0) -> None:
        self.server, self.how, self.seconds = server, how, seconds

    def __enter__(self) -> Stall:
        self.started = time.monotonic()
        if self.how == "sigstop":
            self.server.pause()
        else:
            self.server.client_pause(int(self.seconds * 1000))
        return self

    def __exit__(self, *exc: object) -> None:
        left = self.seconds - (time.monotonic() - self.started)
        if left > 0:
            time.sleep(left)
        if self.how == "sigstop":
            self.server.resume()
        time.sleep(0.3)  # let Redis run what was queued: it must change nothing


stall_kinds = pytest.mark.parametrize("how", ["sigstop", "client_pause"])


def stalled_app(make_app, server: RedisServer):
    app = make_app(SMSCODE_STORAGE_URI=server.url, SMSCODE_STORAGE_TIMEOUT_SECONDS=STALL_TIMEOUT)
    client = app.test_client()
    assert send(client, OTHER).status_code == 200  # pool, scripts and clock offset are warm
    return client


def assert_quick_unavailable(response, started: float) -> None:
    assert_unavailable(response)
    assert time.monotonic() - started < STALL_TIMEOUT + 0.7


@stall_kinds
def test_a_send_answered_503_by_a_stalled_redis_leaves_nothing_behind(
    make_app, sms_server, own_redis, how
):
    client = stalled_app(make_app, own_redis)
    with Stall(own_redis, how):
        started = time.monotonic()
        assert_quick_unavailable(send(client), started)
    assert sms_server.messages_to(PHONE) == []

    response = send(client)  # no cooldown, no counted send, no code was left behind
    assert response.status_code == 200, response.get_data(as_text=True)
    assert len(sms_server.messages_to(PHONE)) == 1
    assert verify(client, sms_server.last_code(PHONE)).status_code == 200


@stall_kinds
def test_a_verify_answered_503_by_a_stalled_redis_consumes_and_counts_nothing(
    make_app, sms_server, own_redis, how
):
    client = stalled_app(make_app, own_redis)
    assert send(client).status_code == 200
    code = sms_server.last_code(PHONE)
    before = assert_error(verify(client, wrong(code)), 400, "invalid_code")["attempts_left"]

    with Stall(own_redis, how):
        started = time.monotonic()
        assert_quick_unavailable(verify(client, wrong(code)), started)  # would count
        started = time.monotonic()
        assert_quick_unavailable(verify(client, code), started)  # would consume

    after = assert_error(verify(client, wrong(code)), 400, "invalid_code")["attempts_left"]
    assert after == before - 1  # only this guess counted, none of the stalled ones
    assert verify(client, code).status_code == 200  # the code was still live
    assert len(sms_server.messages_to(PHONE)) == 1


# -- restarts and crashes --------------------------------------------------------------------


@pytest.mark.parametrize("persistent", [True, False], ids=["appendonly", "no-persistence"])
def test_redis_restarted_with_and_without_persistence(make_app, sms_server, persistent):
    server = RedisServer(appendonly=persistent).start()
    try:
        client = make_app(
            SMSCODE_STORAGE_URI=server.url, SMSCODE_STORAGE_TIMEOUT_SECONDS=STALL_TIMEOUT
        ).test_client()
        assert send(client).status_code == 200
        code = sms_server.last_code(PHONE)
        before = assert_error(verify(client, wrong(code)), 400, "invalid_code")["attempts_left"]

        server.stop()
        started = time.monotonic()
        assert_quick_unavailable(verify(client, code), started)
        server.start()  # same port and dir; the app is not restarted

        if persistent:  # code, failures and cooldown all survived
            after = assert_error(verify(client, wrong(code)), 400, "invalid_code")["attempts_left"]
            assert after == before - 1
            assert verify(client, code).status_code == 200
            assert_error(send(client), 429, "throttled")
        else:  # everything is gone: the old code is simply expired, a new send works
            assert_error(verify(client, code), 400, "code_expired")
            assert send(client).status_code == 200
            assert verify(client, sms_server.last_code(PHONE)).status_code == 200
    finally:
        server.cleanup()


def test_redis_killed_mid_load(make_app, sms_server, own_redis, record_property):
    """SIGKILL under concurrent sends and verifies: only 200, 4xx or the documented 503, no
    request outlives the timeout by much, and work resumes once Redis is back."""
    app = make_app(
        SMSCODE_STORAGE_URI=own_redis.url,
        SMSCODE_STORAGE_TIMEOUT_SECONDS=STALL_TIMEOUT,
        **TRAFFIC_CONFIG,
    )
    phones = [f"136{n:08d}" for n in range(10_000_000, 10_000_004)]
    traffic = Traffic(app, sms_server, phones).start()
    try:
        time.sleep(0.5)
        own_redis.kill()
        time.sleep(1.0)
        own_redis.start()
        restarted = time.monotonic()
        time.sleep(1.5)
    finally:
        traffic.stop()
    record_property("traffic", traffic.report())
    print("redis killed:", traffic.report())
    assert all(
        a.status == 200 or 400 <= a.status < 500 or a.status == 503 for a in traffic.answers
    ), traffic.report()
    assert not [
        a
        for a in traffic.unavailable()
        if a.error != "storage_unavailable" or a.retry_after is None
    ], traffic.report()
    assert traffic.unavailable(), "the crash went unnoticed: " + traffic.report()
    traffic.assert_recovered(restarted, slowest=2 * STALL_TIMEOUT + 1.0)
    fresh_round(app.test_client(), sms_server, phones)
