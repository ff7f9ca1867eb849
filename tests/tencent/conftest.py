"""Fixtures of the Tencent tests: the loopback Tencent server (one per session, emptied per
test) and an app factory whose sender is the real ``tencent`` sender, talking through the
real SDK to that server (which checks every TC3 signature). ``make_app`` comes from
tests/conftest.py, so each behaviour test runs against memory:// and a real Redis."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from tests.servers.tencent_server import SDK_APP_ID, SECRET_ID, SECRET_KEY, TencentServer


@pytest.fixture(scope="session")
def _tencent_server() -> Iterator[TencentServer]:
    with TencentServer() as server:
        yield server


@pytest.fixture
def tencent_server(_tencent_server: TencentServer) -> Iterator[TencentServer]:
    """The loopback Tencent server, emptied before and after each test."""
    _tencent_server.reset()
    yield _tencent_server
    _tencent_server.reset()


@pytest.fixture
def tencent_config(tencent_server: TencentServer) -> dict[str, Any]:
    return {
        "SMSCODE_SENDER": "tencent",
        "SMSCODE_TENCENT_SECRET_ID": SECRET_ID,
        "SMSCODE_TENCENT_SECRET_KEY": SECRET_KEY,
        "SMSCODE_TENCENT_SDK_APP_ID": SDK_APP_ID,
        "SMSCODE_TENCENT_SIGN_NAME": "TestSign",
        "SMSCODE_TENCENT_TEMPLATE_ID": "1001",
        "SMSCODE_TENCENT_INTL_TEMPLATE_ID": "2001",
        "SMSCODE_TENCENT_ENDPOINT": tencent_server.endpoint,
        "SMSCODE_TENCENT_PROTOCOL": "http",
        "SMSCODE_TENCENT_TIMEOUT_SECONDS": 2,
    }


@pytest.fixture
def make_tencent_app(
    make_app: Callable[..., Flask], tencent_config: dict[str, Any]
) -> Callable[..., Flask]:
    """``make_app`` with the tencent sender; keyword arguments override config."""

    def factory(register: bool = True, **config: Any) -> Flask:
        return make_app(register, **{**tencent_config, **config})

    return factory


@pytest.fixture
def tencent_app(make_tencent_app: Callable[..., Flask]) -> Flask:
    return make_tencent_app()


@pytest.fixture
def tencent_client(tencent_app: Flask) -> Any:
    return tencent_app.test_client()
