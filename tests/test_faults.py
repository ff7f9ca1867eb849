"""Faults: Redis stopped mid-suite or hanging. Fail closed, fast, and lose nothing."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from flask_smscode import StorageUnavailable, get_service, send_code

from .conftest import PHONE
from .redis_server import RedisServer
from .test_blueprint import assert_error, send, verify

pytestmark = pytest.mark.redis


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
    client = make_app(SMSCODE_STORAGE_URI=f"redis://127.0.0.1:{black_hole}/0",
                      SMSCODE_STORAGE_TIMEOUT_SECONDS=0.2).test_client()
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
