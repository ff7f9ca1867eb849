"""Flask-Limiter, the way its users expect: a real ``Limiter`` on a private Redis.

Every 429 on the SMS endpoints is the documented ``throttled`` answer; with
``SMSCODE_RATELIMIT_BACKEND = "flask-limiter"`` the per-IP SMS limits are counted by the
app's Limiter (its headers, RATELIMIT_ENABLED, request filters, storage); without it the
package's own limits apply and ``limiter.exempt(sms_bp)`` keeps the app's from counting too.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from flask import Flask, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from flask_smscode import sms_bp
from flask_smscode.errors import ConfigurationError
from flask_smscode.messages import BUILTIN

pytestmark = pytest.mark.redis

OFFICE = "10.1.2.3"
PHONES = [f"1380013{i:04d}" for i in range(20)]


@pytest.fixture
def limiter_prefix(redis_url: str) -> Iterator[str]:
    """A fresh Flask-Limiter key prefix; its keys are removed afterwards."""
    prefix = f"fl-test-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def make_app(redis_url: str, limiter_prefix: str) -> Callable[..., tuple[Flask, Limiter]]:
    def factory(
        default_limits: list[str] | None = None,
        exempt: bool = False,
        limiter_first: bool = False,
        **config: Any,
    ) -> tuple[Flask, Limiter]:
        app = Flask(f"fl_{uuid.uuid4().hex[:6]}")
        app.config.update(
            SECRET_KEY="fl-secret",
            TESTING=True,
            SMSCODE_SENDER="console",
            SMSCODE_STORAGE_URI="memory://",
            SMSCODE_IP_SEND_LIMITS="2/minute",
            RATELIMIT_HEADERS_ENABLED=True,
        )
        app.config.update(config)
        limiter = Limiter(
            get_remote_address,
            default_limits=default_limits or [],
            storage_uri=redis_url,
            key_prefix=limiter_prefix,
        )
        if limiter_first:
            limiter.init_app(app)
        app.register_blueprint(sms_bp)
        if not limiter_first:
            limiter.init_app(app)

        @app.route("/hello")
        def hello() -> str:
            return "hello"

        @limiter.request_filter
        def office_network() -> bool:
            return request.remote_addr == OFFICE

        if exempt:
            limiter.exempt(sms_bp)
        return app, limiter

    return factory


def send(app: Flask, phone: str, ip: str = "192.0.2.7", lang: str = "en") -> Any:
    return app.test_client().post(
        "/sms/send",
        json={"phone": phone},
        environ_base={"REMOTE_ADDR": ip},
        headers={"Accept-Language": lang},
    )


def assert_throttled(response: Any, key: str = "throttled", lang: str = "en") -> int:
    body = response.get_json()
    assert response.status_code == 429, body
    assert body["ok"] is False and body["error"] == "throttled"
    assert isinstance(body["retry_after"], int) and 1 <= body["retry_after"] <= 60
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    assert body["message"] == BUILTIN[lang][key].format(retry_after=body["retry_after"])
    return int(body["retry_after"])


def test_the_apps_default_limits_answer_throttled_json(make_app: Any) -> None:
    app, _ = make_app(default_limits=["2/minute"])
    assert send(app, PHONES[0]).status_code == 200
    assert send(app, PHONES[1]).status_code == 200
    response = send(app, PHONES[2], lang="zh-CN")
    assert_throttled(response, lang="zh")  # was {"error": "http_error"}, no retry_after
    assert response.headers["X-RateLimit-Limit"] == "2"
    assert response.headers["Content-Language"] == "zh"
    # Default limits count per endpoint: /sms/verify has its own two.
    client = app.test_client()
    answers = [
        client.post(
            "/sms/verify",
            json={"phone": PHONES[0], "code": "123456"},
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
        )
        for _ in range(3)
    ]
    assert [a.get_json()["error"] for a in answers] == ["invalid_code"] * 2 + ["throttled"]
    assert_throttled(answers[2], lang="zh")  # no Accept-Language: the default


def test_flask_limiter_backend_shows_the_sms_limits_in_its_headers(
    make_app: Any, redis_url: str, limiter_prefix: str
) -> None:
    app, _ = make_app(SMSCODE_RATELIMIT_BACKEND="flask-limiter")
    first = send(app, PHONES[0])
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit"] == "2"
    assert first.headers["X-RateLimit-Remaining"] == "1"
    assert send(app, PHONES[1]).headers["X-RateLimit-Remaining"] == "0"
    third = send(app, PHONES[2])
    assert_throttled(third, key="throttled.ip")
    assert third.headers["X-RateLimit-Remaining"] == "0"
    # Another client has its own budget; the counts live in the Limiter's Redis storage.
    assert send(app, PHONES[3], ip="192.0.2.8").status_code == 200
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"*{limiter_prefix}*smscode.send*"))
    finally:
        client.close()


def test_limiter_initialised_before_the_blueprint(make_app: Any) -> None:
    app, _ = make_app(limiter_first=True, SMSCODE_RATELIMIT_BACKEND="flask-limiter")
    responses = [send(app, p) for p in PHONES[:3]]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[0].headers["X-RateLimit-Limit"] == "2"  # the SMS limit, via the Limiter
    assert_throttled(responses[2], key="throttled.ip")


def test_ratelimit_enabled_false_turns_the_sms_ip_limits_off(make_app: Any) -> None:
    app, _ = make_app(SMSCODE_RATELIMIT_BACKEND="flask-limiter", RATELIMIT_ENABLED=False)
    responses = [send(app, p) for p in PHONES[:5]]
    assert [r.status_code for r in responses] == [200] * 5
    assert all("X-RateLimit-Limit" not in r.headers for r in responses)
    # The per-phone rules are the package's own and still hold.
    assert_throttled(send(app, PHONES[0]), key="throttled.cooldown")


def test_a_request_filter_exempts_the_office_network(make_app: Any) -> None:
    app, _ = make_app(SMSCODE_RATELIMIT_BACKEND="flask-limiter")
    assert [send(app, p, ip=OFFICE).status_code for p in PHONES[:5]] == [200] * 5
    assert [send(app, p).status_code for p in PHONES[5:8]] == [200, 200, 429]


def test_flask_limiter_backend_counts_default_limits_once(make_app: Any) -> None:
    app, _ = make_app(
        default_limits=["3/minute"],
        SMSCODE_RATELIMIT_BACKEND="flask-limiter",
        SMSCODE_IP_SEND_LIMITS="10/minute",
    )
    # Counted twice per request, the default limit would refuse the second request.
    responses = [send(app, p) for p in PHONES[:4]]
    assert [r.status_code for r in responses] == [200, 200, 200, 429]
    # The app's default limit (3), not the SMS one (10), breached in the adapter's check.
    assert_throttled(responses[3], key="throttled.ip")
    assert responses[3].headers["X-RateLimit-Limit"] == "3"


def test_flask_limiter_backend_with_exempted_blueprint(make_app: Any) -> None:
    app, _ = make_app(
        default_limits=["1/minute"], exempt=True, SMSCODE_RATELIMIT_BACKEND="flask-limiter"
    )
    # Exempt from the app's defaults, not from the SMS limits the views carry.
    assert [send(app, p).status_code for p in PHONES[:3]] == [200, 200, 429]
    hello = app.test_client()
    assert [hello.get("/hello").status_code for _ in range(2)] == [200, 429]


def test_store_backend_exempted_blueprint_counts_once(make_app: Any) -> None:
    app, _ = make_app(default_limits=["1/minute"], exempt=True)
    responses = [send(app, p) for p in PHONES[:3]]
    assert [r.status_code for r in responses[:2]] == [200, 200]
    assert all("X-RateLimit-Limit" not in r.headers for r in responses)  # not the app's
    assert_throttled(responses[2], key="throttled.ip")  # the package's own 2/minute
    hello = app.test_client()
    assert [hello.get("/hello").status_code for _ in range(2)] == [200, 429]


def test_store_backend_ignores_ratelimit_enabled(make_app: Any) -> None:
    app, _ = make_app(RATELIMIT_ENABLED=False)
    responses = [send(app, p) for p in PHONES[:3]]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert_throttled(responses[2], key="throttled.ip")  # the store's own per-IP limit


def test_unknown_backend_is_refused_at_start(make_app: Any) -> None:
    with pytest.raises(ConfigurationError, match="SMSCODE_RATELIMIT_BACKEND"):
        make_app(SMSCODE_RATELIMIT_BACKEND="nginx")
