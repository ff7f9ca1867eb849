"""``POST /sms/replies/<secret>``: replies (SmsUp) pushed by Alibaba Cloud over HTTP, with
the report receiver's protections and Alibaba's answers (web/replies.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_smscode import get_service, reply_received
from tests.helpers import E164, PHONE
from tests.servers.mns_server import sms_up

SECRET = "r3ply-S3cret_" + "y" * 30


@pytest.fixture
def reply_app(make_app: Callable[..., Flask]) -> Flask:
    return make_app(SMSCODE_ALIYUN_REPLY_SECRET=SECRET)


@pytest.fixture
def seen() -> Iterator[list[dict[str, Any]]]:
    found: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        found.append(kwargs)

    reply_received.connect(receiver)
    yield found
    reply_received.disconnect(receiver)


def push(app: Flask, body: Any, secret: str = SECRET, **kwargs: Any) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    return app.test_client().post(
        f"/sms/replies/{secret}", data=data, content_type="application/json", **kwargs
    )


def test_a_pushed_unsubscribe_suppresses_and_is_answered_as_alibaba_expects(
    reply_app: Flask, seen: list[dict[str, Any]]
) -> None:
    response = push(reply_app, [sms_up(PHONE, "退订", 1), sms_up("13900139000", "谢谢", 2)])
    assert response.status_code == 200
    assert response.get_json() == {"code": 0, "msg": "接收成功"}
    assert get_service(reply_app).suppression.suppressed([E164, "+8613900139000"]) == {E164}
    assert [s["unsubscribed"] for s in seen] == [True, False]
    again = push(reply_app, [sms_up(PHONE, "退订", 1)])  # Alibaba pushes again
    assert again.status_code == 200 and len(seen) == 2


def test_a_wrong_secret_or_an_off_receiver_is_404(
    reply_app: Flask, make_app: Callable[..., Flask]
) -> None:
    assert push(reply_app, [], secret=SECRET[:-1] + "z").status_code == 404
    assert push(make_app(), [], secret=SECRET).status_code == 404


def test_a_malformed_body_is_400(reply_app: Flask) -> None:
    for body in (b"not json", b'{"a": 1}', b'[{"phone_number": "13800138000"}]'):
        response = push(reply_app, body)
        assert response.status_code == 400
        assert response.get_json()["code"] == 1


def test_a_large_body_is_413(make_app: Callable[..., Flask]) -> None:
    app = make_app(SMSCODE_ALIYUN_REPLY_SECRET=SECRET, SMSCODE_ALIYUN_REPORT_MAX_BYTES=1024)
    assert push(app, b"[" + b" " * 2000 + b"]").status_code == 413


def test_the_source_allowlist_is_the_report_receivers(make_app: Callable[..., Flask]) -> None:
    app = make_app(
        SMSCODE_ALIYUN_REPLY_SECRET=SECRET, SMSCODE_ALIYUN_REPORT_ALLOWED_IPS=["10.0.0.0/8"]
    )
    assert push(app, []).status_code == 403
    allowed = push(app, [], environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert allowed.status_code == 200
