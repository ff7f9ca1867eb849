"""Fixtures of the pnvs sender's tests: the loopback Dypnsapi server and apps that send
through it, against ``memory://`` and a real Redis (the contract must hold on both)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_smscode import sms_bp
from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET
from tests.servers.dypnsapi_server import DypnsapiServer

PNVS_SIGN = "速通互联验证码"
PNVS_TEMPLATE = "100001"


@pytest.fixture(scope="session")
def _pnvs_server() -> Iterator[DypnsapiServer]:
    server = DypnsapiServer({ACCESS_KEY_ID: ACCESS_KEY_SECRET})
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pnvs_server(_pnvs_server: DypnsapiServer) -> Iterator[DypnsapiServer]:
    """The loopback Dypnsapi server, emptied before and after each test."""
    _pnvs_server.reset()
    yield _pnvs_server
    _pnvs_server.reset()


@pytest.fixture
def pnvs_config(pnvs_server: DypnsapiServer) -> dict[str, Any]:
    return {
        "SMSCODE_SENDER": "pnvs",
        "SMSCODE_ALIYUN_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": ACCESS_KEY_SECRET,
        "SMSCODE_PNVS_SIGN_NAME": PNVS_SIGN,
        "SMSCODE_PNVS_TEMPLATE_CODE": PNVS_TEMPLATE,
        "SMSCODE_PNVS_ENDPOINT": pnvs_server.endpoint,
        "SMSCODE_PNVS_PROTOCOL": "http",
        "SMSCODE_PNVS_TIMEOUT_SECONDS": 2,
    }


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def pnvs_store(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
def make_pnvs_app(
    pnvs_store: str, key_prefix: str, pnvs_config: dict[str, Any]
) -> Iterator[Callable[..., Flask]]:
    """A fresh app sending through PNVS; keyword arguments override its config."""
    apps: list[Flask] = []

    def factory(**config: Any) -> Flask:
        app = Flask(f"pnvs_app_{len(apps)}")
        app.config.update(
            SECRET_KEY="test-secret-key",
            TESTING=True,
            SMSCODE_STORAGE_URI=pnvs_store,
            SMSCODE_KEY_PREFIX=f"{key_prefix}-{len(apps)}",
            **pnvs_config,
        )
        app.config.update(config)
        app.register_blueprint(sms_bp)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        service = app.extensions.get("smscode")
        if service is not None:
            service.store.close()


@pytest.fixture
def pnvs_client(make_pnvs_app: Callable[..., Flask]) -> Any:
    return make_pnvs_app().test_client()
