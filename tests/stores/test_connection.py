"""Storage settings checked at start-up, and 503s that say why in the log.

A typo in SMSCODE_STORAGE_OPTIONS must fail at start-up, not answer 503 forever; a Redis
that is down at start-up must not stop the app from starting (it answers 503 until Redis
is back); and every 503 is logged with its cause, never with a secret from the URI.
"""

from __future__ import annotations

import logging
import time

import pytest

from flask_smscode import ConfigurationError
from tests.helpers import assert_error, send, verify
from tests.servers.redis_server import free_port

pytestmark = pytest.mark.parametrize("store_uri", ["memory"], ids=["own"], indirect=True)

PASSWORD = "pw-Sup3rSecret"  # a test value that must never reach a log line


def closed_port() -> int:
    return free_port()  # nothing listens there: connections are refused at once


@pytest.mark.parametrize(
    "uri",
    [
        "redis://127.0.0.1:{port}/0",
        "redis+cluster://127.0.0.1:{port},127.0.0.1:{port}",
        "redis+sentinel://127.0.0.1:{port}/mymaster",
    ],
    ids=["redis", "cluster", "sentinel"],
)
def test_an_unknown_storage_option_is_refused_at_start_up_by_name(make_app, uri):
    with pytest.raises(ConfigurationError, match="socket_timeoutt"):
        make_app(
            SMSCODE_STORAGE_URI=uri.format(port=closed_port()),
            SMSCODE_STORAGE_OPTIONS={"socket_timeoutt": 1},
        )


@pytest.mark.parametrize(
    "uri",
    [
        "redis://127.0.0.1:{port}/0",
        "redis+cluster://127.0.0.1:{port}",
        "redis+sentinel://127.0.0.1:{port}/mymaster",
    ],
    ids=["redis", "cluster", "sentinel"],
)
def test_an_app_starts_while_redis_is_down_then_answers_503(make_app, sms_server, uri):
    app = make_app(
        SMSCODE_STORAGE_URI=uri.format(port=closed_port()), SMSCODE_STORAGE_TIMEOUT_SECONDS=0.3
    )
    assert "smscode" in app.blueprints
    client = app.test_client()
    for request in (lambda: send(client), lambda: verify(client, "123456")):
        started = time.monotonic()
        assert_error(request(), 503, "storage_unavailable")
        assert time.monotonic() - started < 0.3 + 1.0  # the timeout, not a retry loop
    assert sms_server.sent == []


@pytest.mark.parametrize(
    "uri",
    [
        f"redis://:{PASSWORD}@127.0.0.1:{{port}}/0",
        f"redis+sentinel://:{PASSWORD}@127.0.0.1:{{port}}/mymaster",
    ],
    ids=["redis", "sentinel"],
)
def test_a_503_logs_its_cause_without_the_password(make_app, sms_server, caplog, uri):
    port = closed_port()
    client = make_app(
        SMSCODE_STORAGE_URI=uri.format(port=port), SMSCODE_STORAGE_TIMEOUT_SECONDS=0.3
    ).test_client()
    with caplog.at_level(logging.DEBUG):
        for _ in range(20):
            started = time.monotonic()
            assert_error(send(client), 503, "storage_unavailable")
            assert time.monotonic() - started < 0.3 + 1.0  # 20 in well under 10 s
    text = "\n".join(record.getMessage() for record in caplog.records)
    causes = [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING
        and "Error" in r.getMessage()
        and "storage" in r.getMessage()
    ]
    assert causes, text  # the error class (ConnectionError, MasterNotFoundError, ...) is named
    assert any(name in text for name in ("ConnectionError", "MasterNotFoundError")), text
    assert len(causes) <= 5, text  # rate-limited: 20 failures are not 20 cause lines
    assert PASSWORD not in text
    assert PASSWORD not in caplog.text


def test_a_lazy_cluster_is_built_once_when_two_threads_need_it_at_once(store_uri: str) -> None:
    """The store's clock thread and the first request can ask for the cluster client at
    the same moment: one builds it, the other waits for it and gets the same client (a
    thread that found it built while it waited used to raise an UnboundLocalError)."""
    import threading

    from flask_smscode.stores.connection import LazyCluster

    built: list[object] = []

    def slow_factory() -> object:
        time.sleep(0.2)
        built.append(object())
        return built[-1]

    lazy = LazyCluster(slow_factory)
    got: list[object] = []
    threads = [threading.Thread(target=lambda: got.append(lazy._get())) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert len(built) == 1 and got == built * 4
