"""Regression tests of the defects found from outside (issue 8, section 1): each failed
before its fix."""

from __future__ import annotations

import logging

import pytest

from flask_smscode import InvalidToken, check_token
from flask_smscode.metrics import STATS
from tests.helpers import PHONE
from tests.security.support import assert_error, assert_untouched, redis_url_of, send, verify

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
