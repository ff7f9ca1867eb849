"""The demo site through Flask's test client: pages, sign-up and log-in through the real
/sms endpoints, accounts in SQLite that survive a restart, the stable SECRET_KEY shared with
``flask smscode``, no account enumeration at the send step, both languages, the CSP, and
/metrics. Also the helper script's static checks (ES2017, no eval, no inline style).

Each test builds its own app with its own instance folder (SQLite file and key) and memory
store, and the environment is cleared of demo settings so a developer's REDIS_URL or
SMSCODE_* cannot leak in.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from flask_smscode import __version__, normalize_phone
from flask_smscode.config import DEFAULTS

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # demo_app.py sits at the repo root, outside the package
    sys.path.insert(0, str(ROOT))

from demo_app import (  # noqa: E402
    CONTENT_SECURITY_POLICY,
    _plain_metrics,
    banner,
    config_from_env,
    create_app,
    stable_secret_key,
)

PHONE = "13800138000"
MASKED = "138****8000"
CODE_LINE = re.compile(r"code (\d{4,10}) sent to (\S+) for (\w+)")
SCRIPT = ROOT / "flask_smscode" / "web" / "static" / "smscode.js"
README = ROOT / "README.md"


@pytest.fixture(autouse=True)
def demo_clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.startswith("SMSCODE_") or key in {
            "REDIS_URL",
            "SECRET_KEY",
            "FLASK_DEBUG",
            "DEMO_INSTANCE_PATH",
        }:
            monkeypatch.delenv(key)


@pytest.fixture
def instance(tmp_path: Path) -> Path:
    return tmp_path / "instance"


@pytest.fixture
def demo_make_app(instance: Path) -> Callable[..., Flask]:
    """A demo app on ``instance``; no resend wait, so one test can send several codes."""

    def make(**config: Any) -> Flask:
        return create_app(
            {"TESTING": True, "SMSCODE_RESEND_INTERVAL_SECONDS": 0, **config},
            instance_path=instance,
        )

    return make


@pytest.fixture
def demo_client(demo_make_app: Callable[..., Flask]) -> Iterator[FlaskClient]:
    with demo_make_app().test_client() as test_client:
        yield test_client


@pytest.fixture
def demo_get_code(caplog: pytest.LogCaptureFixture) -> Callable[..., str]:
    """Ask /sms/send for a code and read it from the console sender's log line."""

    def get_code(test_client: FlaskClient, phone: str = PHONE, purpose: str = "login") -> str:
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="flask_smscode.console"):
            response = test_client.post("/sms/send", json={"phone": phone, "purpose": purpose})
        assert response.status_code == 200, response.get_json()
        lines = [r.getMessage() for r in caplog.records if r.name == "flask_smscode.console"]
        assert len(lines) == 1, lines
        found = CODE_LINE.search(lines[0])
        assert found and found.group(3) == purpose, lines[0]
        return found.group(1)

    return get_code


def _verify(test_client: FlaskClient, code: str, purpose: str, phone: str = PHONE) -> str:
    response = test_client.post(
        "/sms/verify", json={"phone": phone, "code": code, "purpose": purpose}
    )
    body = response.get_json()
    assert response.status_code == 200, body
    assert body["phone"] == normalize_phone(phone)
    return body["token"]


def _text(response: Any) -> str:
    return response.get_data(as_text=True)


def _error_text(html: str) -> str:
    """The content of the page's #error element (the one the browser test reads too)."""
    found = re.search(r'<div id="error" class="alert" role="alert">(.*?)</div>', html, re.S)
    assert found, "no #error element"
    return found.group(1)


def _signup(
    test_client: FlaskClient, get_code: Callable[..., str], name: str = "小明", phone: str = PHONE
) -> Any:
    token = _verify(test_client, get_code(test_client, phone, "signup"), "signup", phone)
    return test_client.post("/signup", data={"token": token, "name": name})


def _login(test_client: FlaskClient, get_code: Callable[..., str], phone: str = PHONE) -> Any:
    token = _verify(test_client, get_code(test_client, phone, "login"), "login", phone)
    return test_client.post("/login", data={"token": token})


# -- pages -----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/login", "/signup"])
def test_code_pages_use_the_packaged_helper(demo_client: FlaskClient, path: str) -> None:
    response = demo_client.get(path)
    html = _text(response)
    assert response.status_code == 200
    assert f'data-smscode data-smscode-purpose="{path[1:]}"' in html
    for attribute in (
        "data-smscode-phone",
        "data-smscode-send",
        "data-smscode-code",
        "data-smscode-token",
        'data-smscode-message="phone"',
        'data-smscode-message="code"',
    ):
        assert attribute in html, attribute
    assert f'<script src="/sms/static/smscode.js?v={__version__}"></script>' in html
    assert html.count("<script") == 1  # no inline script, no demo script
    assert not re.search(r"\son\w+=|\sstyle=", html)  # no inline handlers or styles
    assert 'inputmode="numeric"' in html and 'autocomplete="one-time-code"' in html
    assert ('id="name"' in html) == (path == "/signup")
    # The phone and code are not posted to the demo's view: only the token (and name).
    assert re.search(r'<input id="phone" data-smscode-phone', html)
    assert not re.search(r'<input[^>]*name="(phone|code)"', html)
    assert "http://" not in html and "https://" not in html  # nothing from the internet
    assert response.headers["Cache-Control"] == "no-store"


def test_strict_content_security_policy(demo_client: FlaskClient) -> None:
    policy = demo_client.get("/login").headers["Content-Security-Policy"]
    assert policy == CONTENT_SECURITY_POLICY
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'" and directives["style-src"] == "'self'"
    assert "unsafe" not in policy and "*" not in policy
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_static_files_are_served(demo_client: FlaskClient) -> None:
    css = demo_client.get("/static/demo.css")
    script = demo_client.get(f"/sms/static/smscode.js?v={__version__}")
    assert css.status_code == 200 and script.status_code == 200
    assert script.mimetype == "text/javascript"
    assert script.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    css.close()
    script.close()


def test_index_and_account_send_visitors_to_login(demo_client: FlaskClient) -> None:
    assert demo_client.get("/").headers["Location"] == "/login"
    assert demo_client.get("/account").headers["Location"] == "/login"


# -- languages -------------------------------------------------------------------------------
def test_chinese_by_default_english_by_accept_language(demo_client: FlaskClient) -> None:
    zh = _text(demo_client.get("/login"))
    assert '<html lang="zh-CN">' in zh and "<h1>登录</h1>" in zh and "获取验证码" in zh
    en = _text(demo_client.get("/login", headers={"Accept-Language": "en-US,en;q=0.9"}))
    assert '<html lang="en">' in en and "<h1>Log in</h1>" in en and "Get code" in en
    assert "获取验证码" not in en
    # Both switch labels on every page, each in its own language.
    for html in (zh, en):
        assert "中文" in html and "English" in html


def test_language_switch_is_remembered(demo_client: FlaskClient) -> None:
    response = demo_client.get("/lang/en?next=/signup")
    assert response.status_code == 303 and response.headers["Location"] == "/signup"
    html = _text(demo_client.get("/signup", headers={"Accept-Language": "zh-CN"}))
    assert "<h1>Sign up</h1>" in html  # the choice beats the browser's preference
    assert 'href="/lang/zh?next=/signup"' in html
    demo_client.get("/lang/zh?next=/signup")
    assert "<h1>注册</h1>" in _text(demo_client.get("/signup"))


OFF_SITE = [
    "https://evil.example/",
    "https://evil",
    "//evil.example/",
    "//evil",
    "/\\evil",
    "\\\\evil",
    "/\t/evil.example",  # browsers drop the tab: //evil.example (issue 15)
    "/\n/evil.example",
    "/login\r\nSet-Cookie: x=1",  # a newline in Location was a 500
    "/%0d%0a",
    "/%09/evil.example",  # decoded once more by a proxy or the browser
    "/%2F/evil.example",
    "/%5Cevil",
    "/ /evil",
    "javascript:alert(1)",
    "",
]


@pytest.mark.parametrize("target", OFF_SITE)
def test_language_switch_only_returns_to_this_site(demo_client: FlaskClient, target: str) -> None:
    response = demo_client.get("/lang/en", query_string={"next": target})
    assert response.status_code == 303
    assert response.headers["Location"] == "/"


@pytest.mark.parametrize("query", ["next=/%09/evil.example", "next=%2F%0A%2Fevil", "next=/%0d%0a"])
def test_language_switch_with_raw_encoded_controls(demo_client: FlaskClient, query: str) -> None:
    """Issue 15 as reported: /lang/en?next=/%09/evil.example answered Location: //evil.example."""
    response = demo_client.get(f"/lang/en?{query}")
    assert (response.status_code, response.headers["Location"]) == (303, "/")


def test_language_switch_keeps_paths_of_this_site(demo_client: FlaskClient) -> None:
    for target in ("/signup", "/login?x=1", "/account#top"):
        response = demo_client.get("/lang/en", query_string={"next": target})
        assert response.headers["Location"] == target


@pytest.mark.parametrize("target", OFF_SITE[:10])
def test_challenge_only_returns_to_this_site(
    monkeypatch: pytest.MonkeyPatch, instance: Path, target: str
) -> None:
    monkeypatch.setenv("DEMO_CHALLENGE", "1")
    with create_app({"TESTING": True}, instance_path=instance).test_client() as test_client:
        page = test_client.get("/challenge", query_string={"next": target})
        assert page.status_code == 200
        question = re.search(r"(\d+) \+ (\d+) = \?", _text(page))
        assert question, "no question on /challenge"
        answer = str(int(question.group(1)) + int(question.group(2)))
        passed = test_client.post("/challenge", data={"answer": answer, "next": target})
        assert passed.status_code == 302
        assert passed.headers["Location"] == "/"


def test_unknown_language_is_ignored(demo_client: FlaskClient) -> None:
    response = demo_client.get("/lang/fr?next=/login")
    assert "Set-Cookie" not in response.headers
    assert "<h1>登录</h1>" in _text(demo_client.get("/login"))


# -- flows -----------------------------------------------------------------------------------
def test_signup_then_logout_then_login(
    demo_client: FlaskClient, demo_get_code: Callable[..., str]
) -> None:
    response = _signup(demo_client, demo_get_code, name="  小明  Ming ")
    assert response.status_code == 303 and response.headers["Location"] == "/account"

    page = _text(demo_client.get("/account"))
    assert "已登录" in page and MASKED in page and "小明 Ming" in page
    assert PHONE not in page  # only the masked form is shown
    assert 'action="/logout"' in page
    assert demo_client.get("/").headers["Location"] == "/account"
    assert demo_client.get("/login").headers["Location"] == "/account"

    response = demo_client.post("/logout")
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert demo_client.get("/account").headers["Location"] == "/login"
    assert "已退出登录。" in _text(demo_client.get("/login"))

    response = _login(demo_client, demo_get_code)
    assert response.status_code == 303 and response.headers["Location"] == "/account"
    assert MASKED in _text(demo_client.get("/account"))


def test_the_readme_walk_signs_up_and_in_and_says_where_the_cooldown_is_met(
    instance: Path, demo_get_code: Callable[..., str]
) -> None:
    """The README's walk with the demo's defaults: the signup code signs the user in (no
    second code), and a login code for the same number within the resend interval is the
    429 ``throttled`` the walk announces, with the seconds left."""
    interval = DEFAULTS["SMSCODE_RESEND_INTERVAL_SECONDS"]
    walk = " ".join(README.read_text(encoding="utf-8").split("## Contents")[0].split())
    assert "Signing up signs you in" in walk
    assert f"(`SMSCODE_RESEND_INTERVAL_SECONDS`, {interval} s)" in walk
    assert "429 `throttled`" in walk and "`SMSCODE_RESEND_INTERVAL_SECONDS=0" in walk
    with create_app({"TESTING": True}, instance_path=instance).test_client() as test_client:
        assert _signup(test_client, demo_get_code).headers["Location"] == "/account"
        assert MASKED in _text(test_client.get("/account"))  # signed in by the signup
        test_client.post("/logout")
        refused = test_client.post("/sms/send", json={"phone": PHONE, "purpose": "login"})
    body = refused.get_json()
    assert refused.status_code == 429 and body["error"] == "throttled"
    assert 0 < body["retry_after"] <= interval
    assert refused.headers["Retry-After"] == str(body["retry_after"])


def test_accounts_survive_a_restart(
    demo_make_app: Callable[..., Flask], demo_get_code: Callable[..., str], instance: Path
) -> None:
    with demo_make_app().test_client() as first:
        _signup(first, demo_get_code, name="Persistent")
    assert (instance / "demo.sqlite3").exists()
    with demo_make_app().test_client() as second:  # a new process would build a new app
        assert _login(second, demo_get_code).headers["Location"] == "/account"
        assert "Persistent" in _text(second.get("/account"))


def test_login_accepts_any_spelling_of_the_phone(
    demo_client: FlaskClient, demo_get_code: Callable[..., str]
) -> None:
    _signup(demo_client, demo_get_code)
    demo_client.post("/logout")
    response = _login(demo_client, demo_get_code, phone="+86 138 0013 8000")
    assert response.headers["Location"] == "/account"


def test_test_numbers_from_the_environment(monkeypatch: pytest.MonkeyPatch, instance: Path) -> None:
    monkeypatch.setenv("SMSCODE_TEST_NUMBERS", '{"13900139000": "246810"}')
    monkeypatch.setenv("SMSCODE_RESEND_INTERVAL_SECONDS", "0")
    with create_app({"TESTING": True}, instance_path=instance).test_client() as test_client:
        assert (
            test_client.post(
                "/sms/send", json={"phone": "13900139000", "purpose": "signup"}
            ).status_code
            == 200
        )
        token = _verify(test_client, "246810", "signup", phone="13900139000")
        assert (
            test_client.post("/signup", data={"token": token, "name": "Tester"}).headers["Location"]
            == "/account"
        )
        assert "139****9000" in _text(test_client.get("/account"))


# -- no enumeration --------------------------------------------------------------------------
def _send_answer(test_client: FlaskClient, phone: str, purpose: str) -> tuple[int, Any, set]:
    response = test_client.post("/sms/send", json={"phone": phone, "purpose": purpose})
    return response.status_code, response.get_json(), set(response.headers.keys()) - {"Date"}


def test_send_step_answers_alike_for_known_and_unknown_phones(
    demo_make_app: Callable[..., Flask], demo_get_code: Callable[..., str]
) -> None:
    known, unknown = "13800138000", "13900139000"
    with demo_make_app().test_client() as test_client:
        _signup(test_client, demo_get_code, phone=known)
        test_client.post("/logout")
        for purpose in ("login", "signup"):
            known_answer = _send_answer(test_client, known, purpose)
            unknown_answer = _send_answer(test_client, unknown, purpose)
            assert known_answer[0] == unknown_answer[0] == 200
            assert known_answer[2] == unknown_answer[2]
            masked = {"phone": "***"}
            assert {**known_answer[1], **masked} == {**unknown_answer[1], **masked}


# -- refusals --------------------------------------------------------------------------------
@pytest.mark.parametrize("token", ["", "garbage", "a" * 2000])
def test_login_with_a_bad_token_shows_the_error(demo_client: FlaskClient, token: str) -> None:
    response = demo_client.post("/login", data={"token": token})
    assert response.status_code == 400
    assert "验证已失效" in _error_text(_text(response))
    assert demo_client.get("/account").headers["Location"] == "/login"


def test_a_used_token_is_refused(
    demo_client: FlaskClient, demo_get_code: Callable[..., str]
) -> None:
    _signup(demo_client, demo_get_code)
    demo_client.post("/logout")
    token = _verify(demo_client, demo_get_code(demo_client), "login")
    assert demo_client.post("/login", data={"token": token}).status_code == 303
    demo_client.post("/logout")
    response = demo_client.post("/login", data={"token": token})
    assert response.status_code == 400
    assert "验证已失效" in _error_text(_text(response))
    assert demo_client.get("/account").headers["Location"] == "/login"


def test_a_token_for_another_purpose_is_refused(
    demo_client: FlaskClient, demo_get_code: Callable[..., str]
) -> None:
    token = _verify(demo_client, demo_get_code(demo_client, PHONE, "login"), "login")
    response = demo_client.post(
        "/signup", data={"token": token, "name": "Ming"}, headers={"Accept-Language": "en"}
    )
    assert response.status_code == 400
    assert "The verification is no longer valid" in _error_text(_text(response))


def test_login_for_an_unknown_phone_offers_signup(
    demo_client: FlaskClient, demo_get_code: Callable[..., str]
) -> None:
    response = _login(demo_client, demo_get_code)
    assert response.status_code == 404
    error = _error_text(_text(response))
    assert "该手机号未注册。" in error and '<a href="/signup">注册</a>' in error
    assert demo_client.get("/account").headers["Location"] == "/login"


def test_duplicate_signup_is_refused(
    demo_client: FlaskClient, demo_get_code: Callable[..., str]
) -> None:
    _signup(demo_client, demo_get_code, name="First")
    demo_client.post("/logout")
    response = _signup(demo_client, demo_get_code, name="Second")
    assert response.status_code == 409
    error = _error_text(_text(response))
    assert "该手机号已注册。" in error and '<a href="/login">登录</a>' in error
    assert demo_client.get("/account").headers["Location"] == "/login"
    _login(demo_client, demo_get_code)
    assert "First" in _text(demo_client.get("/account"))  # the first account is untouched


@pytest.mark.parametrize("name", ["", "   ", "x" * 33, "bad\x07name"])
def test_signup_needs_a_name_and_keeps_the_token(
    demo_client: FlaskClient, demo_get_code: Callable[..., str], name: str
) -> None:
    token = _verify(demo_client, demo_get_code(demo_client, PHONE, "signup"), "signup")
    response = demo_client.post("/signup", data={"token": token, "name": name})
    assert response.status_code == 400
    assert "请输入 1 到 32 个字符的昵称。" in _error_text(_text(response))
    # The bad name was refused before the token was checked, so the token still works.
    response = demo_client.post("/signup", data={"token": token, "name": "Ming"})
    assert response.headers["Location"] == "/account"


def test_logout_needs_post_and_ends_the_session(
    demo_client: FlaskClient, demo_get_code: Callable[..., str]
) -> None:
    _signup(demo_client, demo_get_code)
    assert demo_client.get("/logout").status_code == 405  # a link cannot sign anybody out
    assert demo_client.get("/account").status_code == 200
    demo_client.post("/logout")
    with demo_client.session_transaction() as sess:
        assert "phone" not in sess


def test_a_session_for_a_missing_account_is_dropped(
    tmp_path: Path, demo_get_code: Callable[..., str]
) -> None:
    config = {"TESTING": True, "SECRET_KEY": "shared", "SMSCODE_RESEND_INTERVAL_SECONDS": 0}
    with create_app(config, instance_path=tmp_path / "a").test_client() as first:
        _signup(first, demo_get_code)
        cookie = first.get_cookie("session")
        assert cookie is not None
    with create_app(config, instance_path=tmp_path / "b").test_client() as other:
        other.set_cookie("session", cookie.value)
        assert other.get("/account").headers["Location"] == "/login"


# -- configuration ---------------------------------------------------------------------------
def test_config_from_env_parses_json_and_keeps_text() -> None:
    config = config_from_env(
        {
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
        }
    )
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


def test_create_app_reads_the_environment(monkeypatch: pytest.MonkeyPatch, instance: Path) -> None:
    monkeypatch.setenv("SMSCODE_CODE_TTL_SECONDS", "120")
    monkeypatch.setenv("SECRET_KEY", "from-env")
    app = create_app(instance_path=instance)
    assert app.config["SMSCODE_CODE_TTL_SECONDS"] == 120
    assert app.config["SECRET_KEY"] == "from-env"
    assert not (instance / "secret_key").exists()  # a given key is not written anywhere
    assert app.debug  # demo default, so the console sender shows codes
    response = app.test_client().post("/sms/send", json={"phone": PHONE})
    assert response.get_json()["expires_in"] == 120


def test_every_environment_variable_of_the_demo_is_in_the_readme() -> None:
    """The knobs demo_app.py reads are documented next to the demo command."""
    source = (ROOT / "demo_app.py").read_text(encoding="utf-8")
    names = set(re.findall(r"environ(?:\.get)?[(\[]\s*\"([A-Z_]+)\"", source))
    names |= set(re.findall(r"\"([A-Z_]+)\" (?:not )?in os\.environ", source))
    assert names >= {"HOST", "PORT", "DEMO_CHALLENGE", "REDIS_URL", "SECRET_KEY", "FLASK_DEBUG"}
    intro = " ".join(README.read_text(encoding="utf-8").split("## Contents")[0].split())
    assert not [name for name in names if f"`{name}" not in intro]
    assert 'key.startswith("SMSCODE_")' in source and "`SMSCODE_*`" in intro


def test_demo_challenge_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, instance: Path
) -> None:
    """DEMO_CHALLENGE=1: no code until the arithmetic question at /challenge is answered."""
    monkeypatch.setenv("DEMO_CHALLENGE", "1")
    with create_app({"TESTING": True}, instance_path=instance).test_client() as test_client:
        refused = test_client.post("/sms/send", json={"phone": PHONE, "purpose": "signup"})
        assert refused.status_code == 400
        assert refused.get_json()["error"] == "challenge_required"
        question = re.search(r"(\d+) \+ (\d+) = \?", _text(test_client.get("/challenge")))
        assert question, "no question on /challenge"
        answer = str(int(question.group(1)) + int(question.group(2)))
        passed = test_client.post("/challenge", data={"answer": answer, "next": "/signup"})
        assert passed.status_code == 302 and passed.headers["Location"] == "/signup"
        sent = test_client.post("/sms/send", json={"phone": PHONE, "purpose": "signup"})
        assert sent.status_code == 200
    monkeypatch.setenv("DEMO_CHALLENGE", "0")
    with create_app({"TESTING": True}, instance_path=instance).test_client() as test_client:
        assert test_client.post("/sms/send", json={"phone": PHONE}).status_code == 200


def test_host_and_port_from_the_environment_and_no_logging_setup(
    monkeypatch: pytest.MonkeyPatch, instance: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``python demo_app.py`` listens where HOST and PORT say, and leaves logging to the
    package (no basicConfig: the root logger keeps its handlers)."""
    import demo_app

    monkeypatch.setenv("DEMO_INSTANCE_PATH", str(instance))
    monkeypatch.setenv("HOST", "127.0.0.2")
    monkeypatch.setenv("PORT", "5123")
    runs: list[dict[str, Any]] = []
    monkeypatch.setattr(Flask, "run", lambda self, **options: runs.append(options))
    root_handlers = list(logging.getLogger().handlers)
    demo_app.main()
    [options] = runs
    assert options["host"] == "127.0.0.2" and options["port"] == 5123
    assert "open http://127.0.0.2:5123/" in capsys.readouterr().out
    assert logging.getLogger().handlers == root_handlers


def test_secret_key_is_created_once_and_reused(
    instance: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = create_app({"TESTING": True}, instance_path=instance)
    second = create_app({"TESTING": True}, instance_path=instance)
    key = first.config["SECRET_KEY"]
    assert len(key) == 64 and second.config["SECRET_KEY"] == key
    path = instance / "secret_key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stable_secret_key(instance) == key
    monkeypatch.setenv("DEMO_INSTANCE_PATH", str(instance))
    assert create_app({"TESTING": True}).config["SECRET_KEY"] == key
    path.write_text("short\n")
    with pytest.raises(RuntimeError, match="too short"):
        stable_secret_key(instance)


@pytest.mark.redis
def test_command_line_and_site_agree(redis_url: str, key_prefix: str, instance: Path) -> None:
    """``flask --app demo_app smscode send`` in its own process issues a code the site
    accepts: same Redis, same key from instance/secret_key."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SMSCODE_", "FLASK_")) and k not in {"REDIS_URL", "SECRET_KEY"}
    }
    env.update(REDIS_URL=redis_url, SMSCODE_KEY_PREFIX=key_prefix, DEMO_INSTANCE_PATH=str(instance))
    flask = shutil.which("flask", path=str(Path(sys.executable).parent))
    assert flask is not None
    done = subprocess.run(
        [flask, "--app", "demo_app", "smscode", "send", PHONE, "--purpose", "signup"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    code = re.search(r"^Code: (\d{6})$", done.stdout, re.M)
    assert code, done.stdout
    app = create_app(
        {"TESTING": True, "SMSCODE_STORAGE_URI": redis_url, "SMSCODE_KEY_PREFIX": key_prefix},
        instance_path=instance,
    )
    with app.test_client() as site:
        token = _verify(site, code.group(1), "signup")
        assert site.post("/signup", data={"token": token, "name": "CLI"}).status_code == 303
    app.extensions["smscode"].store.close()


# -- /metrics and the banner -----------------------------------------------------------------
def test_metrics_after_a_send(demo_client: FlaskClient, demo_get_code: Callable[..., str]) -> None:
    demo_get_code(demo_client, PHONE, "signup")
    response = demo_client.get("/metrics")
    assert response.status_code == 200 and response.mimetype == "text/plain"
    assert re.search(r'^smscode_sends_total\{.*purpose="signup".*\} [1-9]', _text(response), re.M)


def test_metrics_fallback_without_prometheus_client(
    demo_make_app: Callable[..., Flask], demo_get_code: Callable[..., str]
) -> None:
    app = demo_make_app()
    with app.test_client() as test_client:
        demo_get_code(test_client, PHONE, "login")
    with app.test_request_context("/metrics"):
        response = _plain_metrics()
    text = response.get_data(as_text=True)
    assert response.mimetype == "text/plain"
    assert "# TYPE smscode_sends_total counter" in text
    assert re.search(r'^smscode_sends_total\{purpose="login",outcome="sent"\} [1-9]', text, re.M)


def test_banner_names_url_store_sender_key_and_accounts(instance: Path) -> None:
    app = create_app(instance_path=instance)
    text = banner(app, "http://127.0.0.1:5000/")
    assert "http://127.0.0.1:5000/" in text and "http://127.0.0.1:5000/metrics" in text
    assert "memory://" in text and "console" in text
    assert "the code will be printed below" in text
    assert f"{instance / 'secret_key'} (created once, reused)" in text
    assert f"SQLite, {instance / 'demo.sqlite3'}" in text
    redis_app = create_app(
        {"SMSCODE_STORAGE_URI": "redis://:hunter2@localhost:6379/0"}, instance_path=instance
    )
    redis_text = banner(redis_app, "http://127.0.0.1:5000/")
    assert "hunter2" not in redis_text and "redis://:***@localhost:6379/0" in redis_text


def test_module_level_app_is_built_on_first_access(
    monkeypatch: pytest.MonkeyPatch, instance: Path
) -> None:
    import demo_app

    monkeypatch.setenv("DEMO_INSTANCE_PATH", str(instance))
    monkeypatch.delitem(vars(demo_app), "app", raising=False)
    assert isinstance(demo_app.app, Flask)
    assert demo_app.app is demo_app.app
    assert demo_app.app.instance_path == str(instance.resolve())


# -- the helper script -----------------------------------------------------------------------
def test_script_is_es2017_without_eval_or_inline_style() -> None:
    """No syntax newer than ES2017 (WeChat's and older iOS browsers) and nothing a strict CSP
    forbids. esprima 4 parses ES2017 and refuses optional chaining, ``??``, class fields and
    ``catch`` without a binding; it accepts object spread (ES2018), so ``...`` is refused
    here by token, with eval, the Function constructor, inline styles and HTML injection."""
    import esprima

    source = SCRIPT.read_text(encoding="utf-8")
    esprima.parseScript(source)  # raises on anything newer than ES2017 but object spread
    tokens = [(token.type, token.value) for token in esprima.tokenize(source)]
    assert ("Punctuator", "...") not in tokens, "spread/rest (object spread is ES2018)"
    names = {value for kind, value in tokens if kind == "Identifier"}
    assert not names & {
        "eval",
        "Function",
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "style",
        "cssText",
        "setAttributeNS",
    }, names
    assert ("Keyword", "class") not in tokens and ("Keyword", "import") not in tokens
    assert not re.search(r"setAttribute\(\s*\"(style|on\w+)\"", source)
    assert f'var VERSION = "{__version__}";' in source


def test_script_url_and_its_caching() -> None:
    from flask import render_template_string

    from flask_smscode import sms_bp

    app = Flask("script_url")
    app.config.update(SECRET_KEY="x", TESTING=True)
    app.register_blueprint(sms_bp, url_prefix="/api/sms")
    with app.test_request_context():
        url = render_template_string("{{ smscode_script_url() }}")
    assert url == f"/api/sms/static/smscode.js?v={__version__}"
    client = app.test_client()
    versioned = client.get(url)
    assert versioned.status_code == 200
    assert versioned.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert versioned.get_data() == SCRIPT.read_bytes()
    plain = client.get("/api/sms/static/smscode.js")  # unversioned: always revalidated
    assert plain.headers["Cache-Control"] == "no-cache" and plain.headers["ETag"]
    old = client.get("/api/sms/static/smscode.js?v=0.0.1")  # an old page's URL
    assert old.headers["Cache-Control"] == "no-cache"
    missing = client.get("/api/sms/static/nope.js")
    assert missing.status_code == 404 and missing.headers["Cache-Control"] == "no-store"
    for response in (versioned, plain, old, missing):
        response.close()


def test_version_is_the_distribution_version() -> None:
    import importlib.metadata

    from flask_smscode._version import _from_pyproject

    assert __version__ == importlib.metadata.version("flask-smscode") == _from_pyproject()
