"""The demo site through Flask's test client: pages, sign-up and log-in through the real
/sms endpoints, and every way the demo's own views refuse a token.

Each test builds its own app (own memory store, own accounts), and the environment is
cleared of demo settings so a developer's REDIS_URL or SMSCODE_* cannot leak in.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # demo_app.py sits at the repo root, outside the package
    sys.path.insert(0, str(ROOT))

from demo_app import banner, config_from_env, create_app  # noqa: E402
from flask_smscode import normalize_phone  # noqa: E402

PHONE = "13800138000"
MASKED = "138****8000"
CODE_LINE = re.compile(r"code (\d{4,10}) sent to (\S+) for (\w+)")


@pytest.fixture(autouse=True)
def demo_clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("SMSCODE_") or key in {"REDIS_URL", "SECRET_KEY", "FLASK_DEBUG"}:
            monkeypatch.delenv(key)


@pytest.fixture
def demo_make_app() -> Callable[..., Flask]:
    """A fresh demo app; no resend wait, so one test can send several codes to one phone."""

    def make(**config: Any) -> Flask:
        return create_app({"TESTING": True, "SMSCODE_RESEND_INTERVAL_SECONDS": 0, **config})

    return make


@pytest.fixture
def demo_client(demo_make_app: Callable[..., Flask]) -> Iterator[FlaskClient]:
    with demo_make_app().test_client() as test_client:
        yield test_client


@pytest.fixture
def demo_get_code(caplog: pytest.LogCaptureFixture) -> Callable[[FlaskClient, str, str], str]:
    """Ask /sms/send for a code and read it from the console sender's log line."""

    def get_code(test_client: FlaskClient, phone: str = PHONE, purpose: str = "login") -> str:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="flask_smscode.console"):
            response = test_client.post("/sms/send", json={"phone": phone, "purpose": purpose})
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["resend_in"] == 0
        lines = [r.getMessage() for r in caplog.records if r.name == "flask_smscode.console"]
        assert len(lines) == 1, lines
        found = CODE_LINE.search(lines[0])
        assert found, lines[0]
        assert found.group(3) == purpose
        return found.group(1)

    return get_code


def _verify(test_client: FlaskClient, code: str, purpose: str, phone: str = PHONE) -> str:
    response = test_client.post("/sms/verify",
                                json={"phone": phone, "code": code, "purpose": purpose})
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["phone"] == normalize_phone(phone)
    return body["token"]


def _text(response: Any) -> str:
    return response.get_data(as_text=True)


def _error_text(html: str) -> str:
    """The content of the page's #error element (the one the browser test reads too)."""
    found = re.search(r'<div id="error"[^>]*role="alert"[^>]*>(.*?)</div>', html, re.S)
    assert found, "no #error element"
    return found.group(1)


def _signup(test_client: FlaskClient, get_code: Callable[..., str], name: str = "小明",
            phone: str = PHONE) -> Any:
    token = _verify(test_client, get_code(test_client, phone, "signup"), "signup", phone)
    return test_client.post("/signup", data={"token": token, "name": name})


def _login(test_client: FlaskClient, get_code: Callable[..., str], phone: str = PHONE) -> Any:
    token = _verify(test_client, get_code(test_client, phone, "login"), "login", phone)
    return test_client.post("/login", data={"token": token})


# -- pages -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/login", "/signup"])
def test_code_pages_render_with_their_fields(demo_client: FlaskClient, path: str) -> None:
    response = demo_client.get(path)
    html = _text(response)
    assert response.status_code == 200
    for element_id in ("phone", "code", "send-code", "submit", "error", "notice", "token-form"):
        assert f'id="{element_id}"' in html, element_id
    assert 'inputmode="numeric"' in html and 'autocomplete="one-time-code"' in html
    assert "手机号 <span" in html and "Phone" in html and "获取验证码 Get code" in html
    assert ('id="name"' in html) == (path == "/signup")
    assert f'data-purpose="{path[1:]}"' in html
    assert 'src="/static/demo.js"' in html and 'href="/static/demo.css"' in html
    assert "http://" not in html and "https://" not in html  # nothing from the internet
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]


def test_head_requests_get_the_page(demo_client: FlaskClient) -> None:
    assert demo_client.head("/login").status_code == 200
    assert demo_client.head("/signup").status_code == 200


def test_static_files_are_served(demo_client: FlaskClient) -> None:
    js = demo_client.get("/static/demo.js")
    css = demo_client.get("/static/demo.css")
    assert js.status_code == 200 and css.status_code == 200
    js.close()
    css.close()


def test_script_has_a_message_for_every_error_code() -> None:
    script = (ROOT / "demo" / "static" / "demo.js").read_text(encoding="utf-8")
    for code in ("invalid_request", "invalid_phone", "region_not_allowed", "invalid_code",
                 "code_expired", "too_many_attempts", "throttled", "provider_error",
                 "storage_unavailable", "network_error"):
        assert f'case "{code}"' in script, code
    assert "attempts_left" in script and "retry_after" in script


def test_index_and_account_send_visitors_to_login(demo_client: FlaskClient) -> None:
    assert demo_client.get("/").headers["Location"] == "/login"
    assert demo_client.get("/account").headers["Location"] == "/login"


# -- flows -----------------------------------------------------------------------------------
def test_signup_then_logout_then_login(demo_client: FlaskClient,
                                       demo_get_code: Callable[..., str]) -> None:
    response = _signup(demo_client, demo_get_code, name="  小明  Ming ")
    assert response.status_code == 303 and response.headers["Location"] == "/account"

    page = _text(demo_client.get("/account"))
    assert "已登录" in page and "Signed in as" in page
    assert MASKED in page and "小明 Ming" in page
    assert "13800138000" not in page  # only the masked form is shown
    assert demo_client.get("/").headers["Location"] == "/account"
    assert demo_client.get("/login").headers["Location"] == "/account"

    response = demo_client.post("/logout")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert demo_client.get("/account").headers["Location"] == "/login"
    assert "You have signed out" in _text(demo_client.get("/login"))

    response = _login(demo_client, demo_get_code)
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    assert MASKED in _text(demo_client.get("/account"))


def test_login_accepts_any_spelling_of_the_phone(demo_client: FlaskClient,
                                                 demo_get_code: Callable[..., str]) -> None:
    _signup(demo_client, demo_get_code)
    demo_client.post("/logout")
    response = _login(demo_client, demo_get_code, phone="+86 138 0013 8000")
    assert response.headers["Location"] == "/account"


def test_test_numbers_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSCODE_TEST_NUMBERS", '{"13900139000": "246810"}')
    monkeypatch.setenv("SMSCODE_RESEND_INTERVAL_SECONDS", "0")
    with create_app({"TESTING": True}).test_client() as test_client:
        assert test_client.post("/sms/send", json={"phone": "13900139000",
                                                   "purpose": "signup"}).status_code == 200
        token = _verify(test_client, "246810", "signup", phone="13900139000")
        assert test_client.post("/signup", data={"token": token, "name": "Tester"}) \
            .headers["Location"] == "/account"
        assert "139****9000" in _text(test_client.get("/account"))


# -- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["", "garbage", "a" * 2000])
def test_login_with_a_bad_token_shows_the_error(demo_client: FlaskClient, token: str) -> None:
    response = demo_client.post("/login", data={"token": token})
    assert response.status_code == 400
    error = _error_text(_text(response))
    assert "验证已失效" in error and "invalid" in error
    assert demo_client.get("/account").headers["Location"] == "/login"


def test_a_used_token_is_refused(demo_client: FlaskClient,
                                 demo_get_code: Callable[..., str]) -> None:
    _signup(demo_client, demo_get_code)
    demo_client.post("/logout")
    token = _verify(demo_client, demo_get_code(demo_client), "login")
    assert demo_client.post("/login", data={"token": token}).status_code == 303
    demo_client.post("/logout")

    response = demo_client.post("/login", data={"token": token})
    assert response.status_code == 400
    assert "already been used" in _error_text(_text(response))
    assert demo_client.get("/account").headers["Location"] == "/login"


def test_a_token_for_another_purpose_is_refused(demo_client: FlaskClient,
                                                demo_get_code: Callable[..., str]) -> None:
    token = _verify(demo_client, demo_get_code(demo_client, PHONE, "login"), "login")
    response = demo_client.post("/signup", data={"token": token, "name": "Ming"})
    assert response.status_code == 400
    assert "another purpose" in _error_text(_text(response))


def test_login_for_an_unknown_phone_offers_signup(demo_client: FlaskClient,
                                                  demo_get_code: Callable[..., str]) -> None:
    response = _login(demo_client, demo_get_code)
    assert response.status_code == 404
    error = _error_text(_text(response))
    assert "该手机号未注册 No account for this phone" in error
    assert '<a href="/signup">' in error and "sign up" in error
    assert demo_client.get("/account").headers["Location"] == "/login"


def test_duplicate_signup_is_refused(demo_client: FlaskClient,
                                     demo_get_code: Callable[..., str]) -> None:
    _signup(demo_client, demo_get_code, name="First")
    demo_client.post("/logout")

    response = _signup(demo_client, demo_get_code, name="Second")
    assert response.status_code == 409
    error = _error_text(_text(response))
    assert "该手机号已注册 This phone already has an account" in error
    assert '<a href="/login">' in error
    assert demo_client.get("/account").headers["Location"] == "/login"

    _login(demo_client, demo_get_code)
    assert "First" in _text(demo_client.get("/account"))  # the first account is untouched


@pytest.mark.parametrize("name", ["", "   ", "x" * 33, "bad\x07name"])
def test_signup_needs_a_name_and_keeps_the_token(demo_client: FlaskClient,
                                                 demo_get_code: Callable[..., str],
                                                 name: str) -> None:
    token = _verify(demo_client, demo_get_code(demo_client, PHONE, "signup"), "signup")
    response = demo_client.post("/signup", data={"token": token, "name": name})
    assert response.status_code == 400
    assert "display name" in _error_text(_text(response))
    # The bad name was refused before the token was checked, so the token still works.
    response = demo_client.post("/signup", data={"token": token, "name": "Ming"})
    assert response.headers["Location"] == "/account"


def test_wrong_code_is_refused_by_the_endpoint(demo_client: FlaskClient,
                                               demo_get_code: Callable[..., str]) -> None:
    code = demo_get_code(demo_client)
    wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
    response = demo_client.post("/sms/verify",
                                json={"phone": PHONE, "code": wrong, "purpose": "login"})
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_code"
    assert response.get_json()["attempts_left"] == 4


def test_logout_needs_post_and_ends_the_session(demo_client: FlaskClient,
                                                demo_get_code: Callable[..., str]) -> None:
    _signup(demo_client, demo_get_code)
    assert demo_client.get("/logout").status_code == 405  # a link cannot sign anybody out
    assert demo_client.get("/account").status_code == 200
    demo_client.post("/logout")
    with demo_client.session_transaction() as sess:
        assert "phone" not in sess


def test_sessions_are_per_app(demo_make_app: Callable[..., Flask],
                              demo_get_code: Callable[..., str]) -> None:
    """Accounts live in each app: a session for an account this app never had is dropped."""
    first = demo_make_app(SECRET_KEY="shared")
    with first.test_client() as test_client:
        _signup(test_client, demo_get_code)
        cookie = test_client.get_cookie("session")
        assert cookie is not None
    with demo_make_app(SECRET_KEY="shared").test_client() as other:
        other.set_cookie("session", cookie.value)
        assert other.get("/account").headers["Location"] == "/login"


# -- configuration ---------------------------------------------------------------------------
def test_config_from_env_parses_json_and_keeps_text() -> None:
    config = config_from_env({
        "SMSCODE_TEST_NUMBERS": '{"13800138000": "123456"}',
        "SMSCODE_CODE_TTL_SECONDS": "120",
        "SMSCODE_ALLOWED_REGIONS": '["CN", "HK"]',
        "SMSCODE_SENDER": "console",
        "SMSCODE_SECRET_KEY": "1234",  # text by nature: stays a string
        "SMSCODE_ALIYUN_SIGN_NAME": "阿里云短信测试",
        "SMSCODE_PHONE_LIMITS": "5/hour",
        "REDIS_URL": "redis://localhost:6379/0",
        "SECRET_KEY": "s3cret",
        "PATH": "/usr/bin",
    })
    assert config == {
        "SMSCODE_TEST_NUMBERS": {"13800138000": "123456"},
        "SMSCODE_CODE_TTL_SECONDS": 120,
        "SMSCODE_ALLOWED_REGIONS": ["CN", "HK"],
        "SMSCODE_SENDER": "console",
        "SMSCODE_SECRET_KEY": "1234",
        "SMSCODE_ALIYUN_SIGN_NAME": "阿里云短信测试",
        "SMSCODE_PHONE_LIMITS": "5/hour",
        "SMSCODE_STORAGE_URI": "redis://localhost:6379/0",
        "SECRET_KEY": "s3cret",
    }
    explicit = config_from_env({"REDIS_URL": "redis://a/0", "SMSCODE_STORAGE_URI": "redis://b/0"})
    assert explicit["SMSCODE_STORAGE_URI"] == "redis://b/0"


def test_create_app_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMSCODE_CODE_TTL_SECONDS", "120")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    app = create_app()
    assert app.config["SMSCODE_CODE_TTL_SECONDS"] == 120
    assert app.config["SECRET_KEY"] == "from-env"
    assert app.debug  # demo default, so the console sender shows codes
    response = app.test_client().post("/sms/send", json={"phone": PHONE})
    assert response.get_json()["expires_in"] == 120
    assert create_app({"SMSCODE_CODE_TTL_SECONDS": 60}).config["SMSCODE_CODE_TTL_SECONDS"] == 60


def test_secret_key_is_random_per_start() -> None:
    first, second = create_app({"TESTING": True}), create_app({"TESTING": True})
    assert len(first.config["SECRET_KEY"]) == 64
    assert first.config["SECRET_KEY"] != second.config["SECRET_KEY"]


def test_banner_names_url_store_and_sender() -> None:
    text = banner(create_app(), "http://127.0.0.1:5000/")
    assert "http://127.0.0.1:5000/" in text
    assert "memory://" in text and "console" in text
    assert "the code will be printed below" in text
    redis_app = create_app({"SMSCODE_STORAGE_URI": "redis://:hunter2@localhost:6379/0"})
    redis_text = banner(redis_app, "http://127.0.0.1:5000/")
    assert "hunter2" not in redis_text and "redis://:***@localhost:6379/0" in redis_text


def test_module_level_app_is_built_on_first_access() -> None:
    import demo_app

    assert "app" not in vars(demo_app) or isinstance(vars(demo_app)["app"], Flask)
    assert isinstance(demo_app.app, Flask)
    assert demo_app.app is demo_app.app
