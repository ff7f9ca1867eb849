"""Fixtures: a real Redis (private), the loopback Dysmsapi server, and an app factory.

Behaviour tests take ``make_app`` and run once per store (``memory://`` and Redis); the
default sender is the real ``aliyun`` sender talking through aliyun-python-sdk-core to
the loopback server, which checks every signature.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask

from flask_smscode import sms_bp
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.redis_cluster import RedisCluster
from tests.servers.redis_sentinel import RedisSentinelSet
from tests.servers.redis_server import RedisServer


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """``$REDIS_URL`` if set, else a private redis-server for the whole session."""
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    server = RedisServer().start()
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
def key_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh key prefix per test, so tests share a Redis without sharing state."""
    prefix = f"smscode-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    if "redis_url" in request.fixturenames:
        client = redis.Redis.from_url(request.getfixturevalue("redis_url"))
        try:
            keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        except redis.RedisError:
            pass
        finally:
            client.close()
    for shared in ("redis_cluster", "redis_sentinel"):  # session-wide: clear our keys only
        if shared in request.fixturenames:
            request.getfixturevalue(shared).clear_prefix(prefix)


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis_cluster),
        pytest.param("sentinel", marks=pytest.mark.redis_sentinel),
    ]
)
def store_uri(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param == "cluster":
        return str(request.getfixturevalue("redis_cluster").uri)
    if request.param == "sentinel":
        return str(request.getfixturevalue("redis_sentinel").uri)
    return request.getfixturevalue("redis_url")


@pytest.fixture(scope="session")
def _sms_server() -> Iterator[DysmsapiServer]:
    server = DysmsapiServer({ACCESS_KEY_ID: ACCESS_KEY_SECRET})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sms_server(_sms_server: DysmsapiServer) -> Iterator[DysmsapiServer]:
    """The loopback Dysmsapi server, emptied before each test."""
    _sms_server.reset()
    yield _sms_server
    _sms_server.reset()


@pytest.fixture
def aliyun_config(sms_server: DysmsapiServer) -> dict[str, Any]:
    return {
        "SMSCODE_SENDER": "aliyun",
        "SMSCODE_ALIYUN_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "SMSCODE_ALIYUN_SIGN_NAME": "TestSign",
        "SMSCODE_ALIYUN_TEMPLATE_CODE": "SMS_123456789",
        # numbers outside the mainland (allowed by some tests) need an international template
        "SMSCODE_ALIYUN_INTL_TEMPLATE_CODE": "SMS_INTL_CODE",
        "SMSCODE_ALIYUN_ENDPOINT": sms_server.endpoint,
        "SMSCODE_ALIYUN_PROTOCOL": "http",
        "SMSCODE_ALIYUN_TIMEOUT_SECONDS": 2,
    }


@pytest.fixture
def make_app(
    store_uri: str, key_prefix: str, aliyun_config: dict[str, Any]
) -> Iterator[Callable[..., Flask]]:
    """Build a fresh app with the blueprint registered; keyword arguments override config."""
    apps: list[Flask] = []

    def factory(register: bool = True, **config: Any) -> Flask:
        app = Flask(f"test_app_{len(apps)}")
        app.config.update(
            SECRET_KEY="test-secret-key",
            TESTING=True,
            SMSCODE_STORAGE_URI=store_uri,
            SMSCODE_KEY_PREFIX=key_prefix if not apps else f"{key_prefix}-{len(apps)}",
            **aliyun_config,
        )
        app.config.update(config)
        if register:
            app.register_blueprint(sms_bp)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        service = app.extensions.get("smscode")
        if service is not None:
            service.store.close()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask) -> Any:
    return app.test_client()


# -- Redis Cluster and Sentinel (H-cluster) ----------------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    """A three-master Redis Cluster on loopback for the whole session (about 2 s to start:
    a fresh master waits 2 s before it reports ``cluster_state:ok``). Tests that move slots
    or fail masters over start their own (see tests/stores/test_cluster.py)."""
    cluster = RedisCluster().start()
    try:
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinelSet]:
    """Master, replica and three sentinels on loopback for the whole session (about 2 s)."""
    sentinels = RedisSentinelSet().start()
    try:
        yield sentinels
    finally:
        sentinels.cleanup()
