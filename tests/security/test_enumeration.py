"""Enumeration: a send answers the same for a number with an account and one without, in the
package and in the demo (which keeps accounts), so /sms/send reveals no account."""

from __future__ import annotations

from typing import Any

from tests.helpers import PHONE
from tests.security.support import OTHER_PHONE, RELAXED, send, verify

STABLE_HEADERS = ("Content-Type", "Cache-Control", "Content-Length", "Retry-After", "Allow")


def _shape(response: Any, purpose: str | None = None) -> tuple[Any, ...]:
    """Everything an attacker sees, with the masked number blanked out."""
    body = dict(response.get_json())
    if body.get("phone"):
        body["phone"] = "masked"
    headers = tuple((h, response.headers.get(h)) for h in STABLE_HEADERS)
    return response.status_code, body, headers


def test_send_answers_are_identical_for_known_and_unknown_numbers(make_app, sms_server):
    client = make_app(**RELAXED).test_client()
    send(client, PHONE)  # PHONE is "known": it has verified before
    assert verify(client, sms_server.last_code(PHONE)).status_code == 200
    for purpose in ("login", "signup", "reset_password"):
        assert _shape(send(client, PHONE, purpose)) == _shape(send(client, OTHER_PHONE, purpose))


def test_demo_send_answers_are_identical_for_registered_and_unknown_numbers(
    aliyun_config, sms_server, tmp_path
):
    from demo_app import create_app

    app = create_app({"TESTING": True, **aliyun_config, **RELAXED}, instance_path=tmp_path)
    client = app.test_client()
    assert send(client, PHONE, "signup").status_code == 200
    token = verify(client, sms_server.last_code(PHONE), purpose="signup").get_json()["token"]
    signed_up = client.post("/signup", data={"token": token, "name": "Ming"})
    assert signed_up.status_code in (302, 303)
    client.post("/logout")
    stranger = app.test_client()
    for purpose in ("login", "signup", "reset_password"):
        registered = send(stranger, PHONE, purpose)
        unknown = send(stranger, OTHER_PHONE, purpose)
        if registered.status_code == 400 and unknown.status_code == 400:
            continue  # a purpose the demo does not configure: refused alike
        assert _shape(registered) == _shape(unknown), purpose
