"""The pumping guard's source rule, shadow mode and receipt learning (core/guard.py), over
real HTTP: a live werkzeug server, the loopback Dysmsapi server behind the real SDK, and
every store (memory, Redis, Cluster, Sentinel).

Distinct client addresses are real ones: each request leaves from its own loopback address
(``127.0.0.N``, all of 127/8 is loopback on Linux), so the app sees ``remote_addr`` as it
would behind no proxy. Nothing here reaches into the store's internals: what the guard
decided is read from the HTTP answers, ``flask smscode guard status``'s data and the log.
"""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_smscode import get_service
from flask_smscode.cli import smscode
from flask_smscode.core.guard import GuardSettings
from flask_smscode.errors import ConfigurationError
from flask_smscode.metrics import STATS
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.live_server import live_server

BLOCK_A = "+861380013"
SECRET = "gu4rd-r3p0rts_" + "x" * 30


def in_a(i: int) -> str:
    return f"1380013{i:04d}"


def call(
    base: str, path: str, body: dict[str, Any], address: int, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST ``body`` as JSON from the loopback address ``127.0.0.<address>``."""
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(
        host, int(port), timeout=10, source_address=(f"127.0.0.{address}", 0)
    )
    try:
        connection.request(
            "POST",
            path,
            json.dumps(body),
            {"Content-Type": "application/json", "Accept-Language": "en", **(headers or {})},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read()), dict(response.getheaders())
    finally:
        connection.close()


def send(base: str, phone: str, address: int, **headers: str) -> tuple[int, dict[str, str]]:
    status, body, answer_headers = call(base, "/sms/send", {"phone": phone}, address, headers)
    assert status in (200, 429), body
    if status == 429:
        assert body["error"] == "throttled"
    return status, answer_headers


def verify(base: str, sms_server: DysmsapiServer, phone: str, address: int) -> int:
    code = sms_server.last_code(phone)
    return call(base, "/sms/verify", {"phone": phone, "code": code}, address)[0]


def prefix_row(app: Flask, prefix: str = BLOCK_A) -> Any:
    with app.app_context():
        _, prefixes = get_service().guard_status()
    return next((p for p in prefixes if p.prefix == prefix), None)


def guard_counts() -> dict[str, int]:
    return {key[0]: n for key, n in STATS.snapshot()["guard_refusals"].items()}


@pytest.fixture
def served(make_app: Callable[..., Flask]) -> Iterator[Callable[..., tuple[Flask, str]]]:
    """Start an app (config overrides as keyword arguments) on a live server."""
    stack: list[Any] = []

    def start(**config: Any) -> tuple[Flask, str]:
        config.setdefault("SMSCODE_RESEND_INTERVAL_SECONDS", 0)
        app = make_app(**config)
        server = live_server(app)
        stack.append(server)
        return app, server.__enter__()

    yield start
    for server in stack:
        server.__exit__(None, None, None)


# -- the source rule -------------------------------------------------------------------------


def test_one_address_cannot_block_a_block_for_everyone(served, sms_server):
    """The issue's attack with the default settings: one client sends 20 unverified codes to
    20 numbers of one block. It is refused itself after SMSCODE_GUARD_SOURCE_SENDS (5); the
    block stays open to everyone else."""
    app, base = served()
    answers = [send(base, in_a(i), address=2) for i in range(20)]
    assert [status for status, _ in answers] == [200] * 5 + [429] * 15
    waits = {int(headers["Retry-After"]) for _, headers in answers[5:]}
    assert all(0 < wait <= 86400 for wait in waits)  # until its count's window ends
    assert len(sms_server.sent) == 5
    # Anyone else still gets a code, and the block is not blocked.
    assert [send(base, in_a(100 + i), address=3 + i)[0] for i in range(3)] == [200] * 3
    row = prefix_row(app)
    assert row is not None and row.blocked_for == 0


def test_many_addresses_block_the_block(served, sms_server, caplog):
    """Unverified sends from SMSCODE_GUARD_MIN_SOURCES (3) or more addresses: the block
    closes for everyone once SMSCODE_GUARD_MIN_SENDS (16) codes went unverified."""
    caplog.set_level(logging.WARNING, "flask_smscode")
    app, base = served()
    statuses = [send(base, in_a(i), address=10 + i % 8)[0] for i in range(30)]
    assert statuses == [200] * 16 + [429] * 14
    assert len(sms_server.sent) == 16
    status, headers = send(base, in_a(500), address=99)  # a newcomer: the block is closed
    assert status == 429 and 43000 < int(headers["Retry-After"]) <= 43200
    assert prefix_row(app).blocked_for > 43000
    assert any("outcome=prefix_blocked" in r.getMessage() for r in caplog.records)


def test_a_source_that_verifies_its_codes_is_never_refused(served, sms_server):
    """A verify by the same source takes one unverified send off its count: an office behind
    one address sending many codes to one block, all typed back, is never the culprit."""
    _, base = served()
    for i in range(12):
        assert send(base, in_a(i), address=20)[0] == 200
        assert verify(base, sms_server, in_a(i), address=20) == 200
    assert len(sms_server.sent) == 12


def test_the_app_can_name_the_source(served, sms_server):
    """SMSCODE_GUARD_SOURCE: behind a proxy or for logged-in users the app says who asks.
    One address, many accounts: each account has its own budget in the block."""
    _, base = served(SMSCODE_GUARD_SOURCE=lambda request: request.headers.get("X-Account"))
    first = [send(base, in_a(i), 30, **{"X-Account": "alice"})[0] for i in range(6)]
    assert first == [200] * 5 + [429]
    assert send(base, in_a(50), 30, **{"X-Account": "bob"})[0] == 200


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SMSCODE_GUARD_MODE", "audit"),
        ("SMSCODE_GUARD_MIN_SOURCES", -1),
        ("SMSCODE_GUARD_SOURCE_SENDS", "five"),
        ("SMSCODE_GUARD_SOURCE", 42),
        ("SMSCODE_GUARD_SOURCE", "no.such.module:function"),
    ],
)
def test_bad_settings_name_their_key(key, value):
    with pytest.raises(ConfigurationError, match=key):
        GuardSettings.from_config({key: value})


# -- shadow mode ------------------------------------------------------------------------------


def test_shadow_mode_decides_logs_and_counts_but_sends(served, sms_server, caplog):
    caplog.set_level(logging.INFO, "flask_smscode")
    before = guard_counts()
    app, base = served(SMSCODE_GUARD_MODE="shadow")
    # One address past its own budget, then many addresses past the conversion threshold.
    assert [send(base, in_a(i), address=40)[0] for i in range(8)] == [200] * 8
    assert [send(base, in_a(100 + i), address=41 + i % 5)[0] for i in range(20)] == [200] * 20
    assert len(sms_server.sent) == 28
    after = guard_counts()
    assert after.get("would_block_source", 0) - before.get("would_block_source", 0) == 3
    assert after.get("would_block_conversion", 0) - before.get("would_block_conversion", 0) == 1
    assert after.get("would_block_blocked", 0) > before.get("would_block_blocked", 0)
    assert after.get("conversion", 0) == before.get("conversion", 0)  # nothing was refused
    lines = [r.getMessage() for r in caplog.records if "event=guard" in r.getMessage()]
    assert any("would_block=conversion" in line and BLOCK_A in line for line in lines)
    assert any("would_block=source" in line for line in lines)
    # The decision is kept as in enforce mode: operators see the block it would be.
    assert prefix_row(app).blocked_for > 43000
    status = app.test_cli_runner().invoke(smscode, ["guard", "status", "--json"])
    assert json.loads(status.output)["mode"] == "shadow"
    # Per-phone limits are not the guard: they still refuse in shadow mode.
    _, base2 = served(SMSCODE_GUARD_MODE="shadow", SMSCODE_RESEND_INTERVAL_SECONDS=60)
    assert send(base2, in_a(900), address=60)[0] == 200
    assert send(base2, in_a(900), address=60)[0] == 429


# -- receipts teach the guard ------------------------------------------------------------------


def test_a_dead_number_report_counts_against_the_prefix(served, sms_server):
    """Send three codes over HTTP, verify one; Alibaba then pushes a report "no such
    subscriber" (MK:0001) for an unverified one: the prefix counts one more unverified send
    and the next send finds its conversion too low. A temporary failure (powered off,
    MK:0023) and a repeated push count nothing."""
    app, base = served(
        SMSCODE_ALIYUN_REPORT_SECRET=SECRET,
        SMSCODE_GUARD_MIN_SENDS=4,
        SMSCODE_GUARD_MIN_CONVERSION=0.5,
        SMSCODE_GUARD_MIN_SOURCES=2,
    )
    for i in range(3):
        assert send(base, in_a(i), address=70 + i)[0] == 200
    assert verify(base, sms_server, in_a(0), address=70) == 200
    row = prefix_row(app)
    assert (row.sends, row.verifies) == (3, 1)
    receiver = f"{base}/sms/reports/{SECRET}"
    off = sms_server.delivery_report(
        sms_server.last_sms(in_a(2)), success=False, err_code="MK:0023"
    )
    assert sms_server.push_accepted(*sms_server.push_reports(receiver, [off]))
    assert prefix_row(app).sends == 3
    dead = sms_server.delivery_report(
        sms_server.last_sms(in_a(1)), success=False, err_code="MK:0001"
    )
    for _ in range(2):  # Alibaba may push a report twice: counted once
        assert sms_server.push_accepted(*sms_server.push_reports(receiver, [dead]))
    assert prefix_row(app).sends == 4
    status, headers = send(base, in_a(3), address=80)
    assert status == 429 and int(headers["Retry-After"]) > 43000
    assert prefix_row(app).blocked_for > 43000


def test_without_the_dead_number_report_the_same_sends_pass(served, sms_server):
    """The control of the test above: the same traffic, no report, the prefix stays open."""
    app, base = served(
        SMSCODE_ALIYUN_REPORT_SECRET=SECRET,
        SMSCODE_GUARD_MIN_SENDS=4,
        SMSCODE_GUARD_MIN_CONVERSION=0.5,
        SMSCODE_GUARD_MIN_SOURCES=2,
    )
    for i in range(3):
        assert send(base, in_a(i), address=70 + i)[0] == 200
    assert verify(base, sms_server, in_a(0), address=70) == 200
    assert send(base, in_a(3), address=80)[0] == 200
    assert prefix_row(app).blocked_for == 0
