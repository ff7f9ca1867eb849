"""Regression tests of the defects found from outside (issue 8, section 1): each failed
before its fix."""

from __future__ import annotations

import io
import json
import logging
import socket
import uuid
from typing import Any

import pytest
import redis

from flask_smscode import InvalidToken, check_token, get_service
from flask_smscode.config import ReportSettings
from flask_smscode.metrics import REPORTS, STATS
from tests.helpers import PHONE
from tests.security.support import (
    PHONES,
    assert_error,
    assert_untouched,
    redis_url_of,
    send,
    verify,
)
from tests.servers.live_server import live_server

HUGE_PURPOSE = "x" * (5 * 1024 * 1024)
FORGED = "login\r\nWARNING smscode event=verify phone=138****8000 outcome=verified FORGED"


@pytest.mark.parametrize("endpoint", ["send", "verify"])
def test_client_purposes_never_become_metric_labels(make_app, endpoint):
    client = make_app().test_client()
    before = STATS.snapshot()
    for i in range(20):
        purpose = f"{HUGE_PURPOSE}{i}" if i % 2 else f"{FORGED}{i}"
        body = {"phone": PHONE, "purpose": purpose, "code": "123456"}
        assert_error(client.post(f"/sms/{endpoint}", json=body), 400, "invalid_request")
    after = STATS.snapshot()
    kind = "sends" if endpoint == "send" else "verifies"
    new_labels = set(after[kind]) - set(before[kind])
    assert new_labels <= {("unknown", "invalid_request")}
    assert all(len(label) <= 64 for labels in after[kind] for label in labels)
    assert (
        after[kind][("unknown", "invalid_request")]
        - before[kind].get(("unknown", "invalid_request"), 0)
        == 20
    )


@pytest.mark.parametrize("endpoint", ["send", "verify"])
def test_client_text_cannot_forge_or_bloat_a_log_line(make_app, caplog, endpoint):
    caplog.set_level(logging.DEBUG, logger="flask_smscode")
    client = make_app().test_client()
    for purpose in (FORGED, HUGE_PURPOSE, "login\u2028FORGED", "login\x1b[2J\x85FORGED"):
        body = {"phone": PHONE, "purpose": purpose, "code": "123456"}
        assert_error(client.post(f"/sms/{endpoint}", json=body), 400, "invalid_request")
    lines = [r.getMessage() for r in caplog.records if r.name == "flask_smscode"]
    assert len(lines) == 4
    for line in lines:
        assert "\n" not in line and "\r" not in line and "\x1b" not in line
        assert "\u2028" not in line and "\x85" not in line
        assert "FORGED" not in line and "xxxxxxxxxx" not in line
        assert "purpose=unknown" in line
        assert len(line) < 400
    for record in caplog.records:
        assert "FORGED" not in str(getattr(record, "smscode", ""))


def test_logged_values_are_bounded_and_escaped():
    from flask_smscode.events import log_event

    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    logger = logging.getLogger("flask_smscode")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        log_event(
            logging.INFO,
            "notify",
            template='a"b\\c d\nX=1',
            request_id="r" * 10_000,
            outcome="sent\r\nFORGED",
        )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    [record] = records
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line and len(line) < 400
    assert 'template="a\\"b\\\\c d\\nX=1"' in line  # logfmt: quoted, escaped


def test_a_used_token_fails_a_peek(make_app, sms_server):
    app = make_app()
    client = app.test_client()
    send(client)
    token = verify(client, sms_server.last_code(PHONE)).get_json()["token"]
    with app.app_context():
        assert check_token(token, "login", consume=False).phone == "+8613800138000"
        check_token(token, "login")
        with pytest.raises(InvalidToken):
            check_token(token, "login", consume=False)
        with pytest.raises(InvalidToken):
            check_token(token, "login")


@pytest.mark.parametrize("endpoint", ["send", "verify"])
def test_deep_json_is_a_counted_400(make_app, request, endpoint):
    limit = "SMSCODE_IP_SEND_LIMITS" if endpoint == "send" else "SMSCODE_IP_VERIFY_LIMITS"
    app = make_app(**{limit: "3/minute"})
    client = app.test_client()
    for _ in range(3):
        response = client.post(f"/sms/{endpoint}", data="[" * 1000, content_type="application/json")
        assert_error(response, 400, "invalid_request")
    # The per-IP budget is spent: even a good request is now refused.
    assert_error(
        client.post(f"/sms/{endpoint}", json={"phone": PHONE, "code": "123456"}), 429, "throttled"
    )
    assert_untouched(app, redis_url=redis_url_of(request))


METHODS = [
    "GET",
    "HEAD",
    "PUT",
    "PATCH",
    "DELETE",
    "TRACE",
    "PROPFIND",
    "QUERY",
    "CONNECT",
    "MKCOL",
    "LOCK",
    "BREW",
]


@pytest.mark.parametrize("path", ["/sms/send", "/sms/verify"])
@pytest.mark.parametrize("method", METHODS)
def test_every_other_method_is_a_json_405(make_app, path, method):
    client = make_app().test_client()
    response = client.open(path, method=method, json={"phone": PHONE})
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, OPTIONS"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    if method == "HEAD":
        assert response.get_data() == b""
    else:
        assert_error(response, 405, "method_not_allowed")


@pytest.mark.parametrize("endpoint", ["send", "verify"])
def test_explicit_null_purpose_is_refused_missing_is_the_default(make_app, sms_server, endpoint):
    client = make_app().test_client()
    body = assert_error(
        client.post(f"/sms/{endpoint}", json={"phone": PHONE, "code": "123456", "purpose": None}),
        400,
        "invalid_request",
    )
    assert body["field"] == "purpose"
    assert sms_server.sent == []
    if endpoint == "send":
        response = client.post("/sms/send", json={"phone": PHONE})
        assert response.status_code == 200 and response.get_json()["purpose"] == "login"


@pytest.mark.parametrize(
    "pasted",
    [
        "13800138000\u200b",
        "\u202a+86 138 0013 8000\u202c",
        "\u200e13800138000\u200f",
        "\u2066138\u200d0013\u20608000\u2069",
        "\ufeff+8613800138000",
        "\u202b13800138000\u202c",
        "\u202d138 0013 8000\u202c",
        "\u2067+86\u200c13800138000\u2069",
    ],
)
def test_pasted_numbers_are_one_phone_sharing_its_throttles(make_app, sms_server, pasted):
    client = make_app().test_client()
    response = send(client, pasted)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["phone"] == "138****8000"
    assert_error(send(client, PHONE), 429, "throttled")  # the same cooldown
    assert_error(send(client, pasted), 429, "throttled")
    [sms] = sms_server.sent
    assert sms.phones == [PHONE]
    assert verify(client, sms.code, phone=pasted).status_code == 200


# -- issue 15: the second round of attacks from outside ------------------------------------
# (cross-site posts, defect 2, are tested over real HTTP in tests/web/test_origins.py; the
# demo's open redirect, defect 5, in tests/test_demo.py)


def _idempotency_keys(app: Any, client: Any) -> list[str]:
    """The Idempotency-Key records under the app's prefix, counted in Redis from outside."""
    pattern = f"{get_service(app).settings.key_prefix}:idem:"
    return [
        k.decode() if isinstance(k, bytes) else k
        for k in client.scan_iter(match=f"{pattern}*", count=1000)
    ]


def _past_the_budget_keys_store_nothing(app: Any, sms_server: Any, store: Any) -> None:
    client = app.test_client()
    first = str(uuid.uuid4())
    for phone, key in ((PHONES[0], first), (PHONES[1], str(uuid.uuid4()))):
        assert send(client, phone, headers={"Idempotency-Key": key}).status_code == 200
    assert len(_idempotency_keys(app, store)) == 2  # accepted requests keep theirs
    for i in range(50):
        refused = send(client, PHONES[2 + i % 8], headers={"Idempotency-Key": str(uuid.uuid4())})
        assert_error(refused, 429, "throttled")
        assert "Idempotent-Replayed" not in refused.headers
    assert len(_idempotency_keys(app, store)) == 2
    assert len(sms_server.sent) == 2
    # An accepted request's key still replays its answer (a replay is not counted).
    replayed = send(client, PHONES[0], headers={"Idempotency-Key": first})
    assert replayed.status_code == 200 and replayed.headers["Idempotent-Replayed"] == "true"


@pytest.mark.redis
@pytest.mark.parametrize("store_uri", ["redis"], indirect=True)
def test_keys_past_the_ip_budget_store_nothing(make_app, sms_server, redis_url):
    """Defect 3: past its per-IP budget each request with a fresh Idempotency-Key stored a
    record (~216 B for 300 s): the store grew with the request rate, not with the limits."""
    store = redis.Redis.from_url(redis_url)
    try:
        _past_the_budget_keys_store_nothing(
            make_app(SMSCODE_IP_SEND_LIMITS="2/hour"), sms_server, store
        )
    finally:
        store.close()


@pytest.mark.redis_cluster
@pytest.mark.parametrize("store_uri", ["memory"], indirect=True)
def test_keys_past_the_ip_budget_store_nothing_on_cluster(make_app, sms_server, redis_cluster):
    """Defect 3 on Redis Cluster, where the key's claim is taken in its own slot first and
    the per-IP refusal must drop it."""
    app = make_app(SMSCODE_IP_SEND_LIMITS="2/hour", SMSCODE_STORAGE_URI=redis_cluster.uri)
    _past_the_budget_keys_store_nothing(app, sms_server, redis_cluster.client())


def test_three_thousand_err_codes_make_a_bounded_number_of_series(make_app, sms_server):
    """Defect 4: every distinct err_code of a pushed report became a metric label (3,000
    series from one push, kept for the life of the process)."""
    secret = "s" * 40
    client = make_app(SMSCODE_ALIYUN_REPORT_SECRET=secret).test_client()
    before = set(REPORTS.snapshot())
    reports = [
        {
            "phone_number": PHONE,
            "success": False,
            "err_code": f"ZZ:{i:04d}",
            "err_msg": "x",
            "biz_id": f"{i}^0",
            "out_id": "",
        }
        for i in range(3000)
    ]
    reports.append({"phone_number": PHONE, "success": False, "err_code": "MK:0001", "out_id": ""})
    response = client.post(f"/sms/reports/{secret}", json=reports)
    assert response.status_code == 200 and response.get_json()["code"] == 0
    new = set(REPORTS.snapshot()) - before
    assert len(new) <= 2, new  # ("unknown", "other") and ("unknown", "MK:0001") at most
    assert {label for _, label in new} <= {"other", "MK:0001"}
    assert REPORTS.err_label("ZZ:0042") == "other"
    assert REPORTS.err_label("DELIVERED") == "DELIVERED"


@pytest.mark.parametrize(
    ("allowed", "address", "ok"),
    [
        (["47.96.0.0/16"], "::ffff:47.96.1.1", True),
        (["47.96.0.0/16"], "47.96.1.1", True),
        (["::ffff:47.96.0.0/112"], "47.96.1.1", True),
        (["::ffff:47.96.0.0/112"], "::ffff:47.96.1.1", True),
        (["47.96.0.0/16"], "::ffff:10.0.0.1", False),
        (["47.96.0.0/16"], "2408:4000::1", False),
        (["2408:4000::/32"], "2408:4000::1", True),
        (["47.96.0.0/16"], "not an address", False),
    ],
)
def test_the_report_allowlist_reads_ipv4_mapped_addresses(allowed, address, ok):
    """Defect 6: behind a dual-stack listener an IPv4 peer is ::ffff:a.b.c.d, and was 403."""
    settings = ReportSettings.from_config(
        {"SMSCODE_ALIYUN_REPORT_SECRET": "s" * 40, "SMSCODE_ALIYUN_REPORT_ALLOWED_IPS": allowed}
    )
    assert settings.source_allowed(address) is ok


def test_a_report_from_an_ipv4_mapped_address_is_received(make_app, sms_server):
    secret = "s" * 40
    app = make_app(
        SMSCODE_ALIYUN_REPORT_SECRET=secret, SMSCODE_ALIYUN_REPORT_ALLOWED_IPS=["47.96.0.0/16"]
    )
    client = app.test_client()
    for address, status in (("::ffff:47.96.1.1", 200), ("::ffff:10.1.1.1", 403)):
        response = client.post(
            f"/sms/reports/{secret}", json=[], environ_overrides={"REMOTE_ADDR": address}
        )
        assert response.status_code == status, response.get_data(as_text=True)


def _chunked(body: bytes, size: int = 100) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


def _raw_post(url: str, path: str, content_type: str, body: bytes) -> tuple[int, dict]:
    """A chunked POST over a real socket (requests would send Content-Length)."""
    host, port = url.split("//", 1)[1].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
            + _chunked(body)
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(payload)


CHUNKED_BODIES = [
    ("application/json", json.dumps({"phone": PHONE, "pad": "x" * 500}).encode()),
    ("application/x-www-form-urlencoded", f"phone={PHONE}&pad={'x' * 500}".encode()),
]


@pytest.mark.parametrize("endpoint", ["send", "verify"])
@pytest.mark.parametrize(("content_type", "body"), CHUNKED_BODIES)
def test_a_chunked_body_over_the_limit_is_413(make_app, sms_server, endpoint, content_type, body):
    """Defect 7: werkzeug cut a chunked body at MAX_CONTENT_LENGTH, so JSON was a 400 and
    a form was read from its first bytes as if whole (a 200 for an oversized send)."""
    app = make_app(MAX_CONTENT_LENGTH=200)
    with live_server(app) as url:
        status, answer = _raw_post(url, f"/sms/{endpoint}", content_type, body)
        assert (status, answer["error"]) == (413, "request_too_large")
        small = json.dumps({"phone": PHONE}).encode() if "json" in content_type else b"phone=1"
        status, answer = _raw_post(url, f"/sms/{endpoint}", content_type, small)
        assert status in (200, 400) and answer.get("error") != "request_too_large", answer
    response = app.test_client().post(
        f"/sms/{endpoint}",
        input_stream=io.BytesIO(body),
        content_type=content_type,
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert_error(response, 413, "request_too_large")
    # Only the small JSON send went out: no oversized request reached the sender.
    assert len(sms_server.sent) == (1 if endpoint == "send" and "json" in content_type else 0)
