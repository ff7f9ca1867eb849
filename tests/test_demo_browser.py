"""The demo site and the package's front-end helper in a real browser.

``python demo_app.py`` runs as a newcomer starts it (no configuration; its SQLite file and
key in a temporary instance folder), and headless Chromium (Debian's, through Playwright)
signs up, signs out, signs in, types a wrong code, reloads during the resend countdown, gets
throttled, in Chinese and in English. The code is read from the demo's terminal, the way a
newcomer reads it. A last test uses the helper on a ten-line page of a bare app (not the
demo) under a strict CSP.

Every page is saved as a screenshot under ``test-output/screenshots/`` (git-ignored);
Chinese must render as glyphs, which needs a CJK font (scripts/test.sh installs
fonts-noto-cjk).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string, request
from playwright.sync_api import Browser, expect, sync_playwright

from flask_smscode import InvalidToken, __version__, check_token, sms_bp
from tests.servers.demo_process import DemoProcess, demo_environment
from tests.servers.live_server import live_server
from tests.servers.redis_server import free_port

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PHONE = "13800138000"
OTHER_PHONE = "13900139000"
MASKED = "138****8000"
TIMEOUT_MS = 10_000
CJK = re.compile(r"[\u4e00-\u9fff]")
COUNTDOWN = re.compile(r"\((\d+)s\)$")


class DemoSite(DemoProcess):
    """``python demo_app.py`` on a free port (tests/servers/demo_process.py collects its
    terminal output)."""

    def __init__(self, port: int, instance: Path, resend_seconds: int) -> None:
        env = demo_environment(
            PORT=str(port),
            PYTHONUNBUFFERED="1",
            DEMO_INSTANCE_PATH=str(instance),
            SMSCODE_RESEND_INTERVAL_SECONDS=str(resend_seconds),
        )
        super().__init__([sys.executable, "demo_app.py"], f"http://127.0.0.1:{port}", env)

    def code_since(self, mark: int, purpose: str, timeout: float = 10.0) -> str:
        """The code the console sender printed for ``purpose`` after line ``mark``."""
        pattern = rf"code (\d{{4,10}}) sent to {re.escape(MASKED)} for {purpose}\b"
        return self.wait_for(pattern, since=mark, timeout=timeout).group(1)


def _has_cjk_font() -> bool:
    if shutil.which("fc-list") is None:
        return False
    listed = subprocess.run(
        ["fc-list", ":lang=zh-cn", "family"], capture_output=True, text=True, check=False
    ).stdout
    return bool(listed.strip())


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; scripts/test.sh does)")
    if not _has_cjk_font():
        pytest.fail(
            "no CJK font: Chinese would render as boxes "
            "(apt-get install fonts-noto-cjk; scripts/test.sh does)"
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _start_demo(tmp_path: Path, resend_seconds: int) -> DemoSite:
    server = DemoSite(free_port(), tmp_path / "instance", resend_seconds)
    try:
        server.wait_until_up()
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[DemoSite]:
    """The demo with a 2 s resend wait (one test sends to one phone twice)."""
    server = _start_demo(tmp_path, resend_seconds=2)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def slow_demo(tmp_path: Path) -> Iterator[DemoSite]:
    """The demo with the default-like 60 s resend wait, for the countdown and the 429."""
    server = _start_demo(tmp_path, resend_seconds=60)
    try:
        yield server
    finally:
        server.stop()


class Tab:
    """One browser context and page, collecting console errors (a CSP violation is one)."""

    def __init__(self, browser: Browser, locale: str) -> None:
        self.context = browser.new_context(locale=locale, viewport={"width": 800, "height": 720})
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.console_errors: list[str] = []
        self.page.on(
            "console",
            lambda msg: self.console_errors.append(msg.text) if msg.type == "error" else None,
        )
        self.page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(browser: Browser) -> Iterator[list[Tab]]:
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        errors = [
            e for e in tab.console_errors if "status of 4" not in e
        ]  # 400/404/429 answers are logged, and expected
        tab.close()
        assert errors == [], errors


def _tab(browser: Browser, tabs: list[Tab], locale: str = "zh-CN") -> Tab:
    tab = Tab(browser, locale)
    tabs.append(tab)
    return tab


def _request_code(
    tab: Tab, server: DemoSite, purpose: str, phone: str = PHONE
) -> tuple[str, dict[str, Any], str]:
    """Click "get code": the button is disabled while the request runs and then counts
    down; returns the code (from the terminal), the JSON answer and the request's language."""
    page = tab.page
    mark = server.mark()
    page.fill("#phone", phone)
    with page.expect_response("**/sms/send") as answer:
        page.click("#send-code")
    response = answer.value
    button = page.locator("#send-code")
    expect(button).to_be_disabled()
    expect(button).to_have_attribute("data-smscode-countdown", re.compile(r"^\d+$"))
    code = server.code_since(mark, purpose)
    return code, response.json(), response.request.headers.get("accept-language", "")


def _wait_for_send_button(tab: Tab) -> None:
    expect(tab.page.locator("#send-code")).to_be_enabled(timeout=5_000)


# -- the demo ----------------------------------------------------------------------------------
def test_sign_up_sign_out_sign_in_in_chinese(
    browser: Browser, tabs: list[Tab], demo: DemoSite
) -> None:
    tab = _tab(browser, tabs, "zh-CN")
    page = tab.page
    banner = demo.output
    assert f"open {demo.url}/" in banner and "memory://" in banner
    assert "the code will be printed below" in banner and "SQLite" in banner

    page.goto(demo.url + "/")
    expect(page).to_have_url(demo.url + "/login")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("登录")
    tab.shot("01-login-zh")
    page.click("#to-signup")
    expect(page).to_have_url(demo.url + "/signup")
    expect(page.locator("#send-code")).to_have_text("获取验证码")

    code, answer, language = _request_code(tab, demo, "signup")
    assert answer["phone"] == MASKED and language == "zh-CN"
    expect(page.locator("#send-code")).to_have_text(re.compile(r"^重新发送 \(\d+s\)$"))
    expect(page.locator("#phone-message")).to_have_text(f"验证码已发送至 {MASKED}，5 分钟内有效。")
    tab.shot("02-signup-code-sent-zh")
    signup_sent = time.monotonic()
    page.fill("#code", code)
    page.fill("#name", "小明 Ming")
    page.click("#submit")
    expect(page).to_have_url(demo.url + "/account")
    expect(page.locator("#signed-in")).to_contain_text(f"已登录： {MASKED} (小明 Ming)")
    assert PHONE not in page.content()
    tab.shot("03-account-zh")

    page.click("#logout")
    expect(page).to_have_url(demo.url + "/login")
    expect(page.locator("#notice")).to_have_text("已退出登录。")
    tab.shot("04-signed-out-zh")
    page.goto(demo.url + "/account")
    expect(page).to_have_url(demo.url + "/login")

    # The resend wait is per phone across purposes: let the signup send's wait pass.
    time.sleep(max(0.0, signup_sent + 2.2 - time.monotonic()))
    code, _, _ = _request_code(tab, demo, "login")
    page.fill("#code", code)
    page.click("#submit")
    expect(page).to_have_url(demo.url + "/account")
    expect(page.locator("#account-name")).to_have_text("小明 Ming")


def test_wrong_code_then_right_one_in_english(
    browser: Browser, tabs: list[Tab], demo: DemoSite
) -> None:
    tab = _tab(browser, tabs, "zh-CN")
    page = tab.page
    page.goto(demo.url + "/login")
    page.click("#lang-en")  # the switch on every page; the choice is kept in a cookie
    expect(page).to_have_url(demo.url + "/login")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Log in")
    code, _, language = _request_code(tab, demo, "login")
    assert language == "en"
    expect(page.locator("#phone-message")).to_have_text(f"Code sent to {MASKED}, valid for 5 min.")

    wrong = f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"
    page.fill("#code", wrong)
    with page.expect_response("**/sms/verify") as verify_answer:
        page.click("#submit")
    refusal = verify_answer.value.json()
    assert refusal["error"] == "invalid_code" and refusal["attempts_left"] == 4
    assert not CJK.search(refusal["message"])  # the server answered in the page's language
    message = page.locator("#code-message")
    expect(message).to_have_text(refusal["message"])  # shown as the server wrote it
    expect(message).to_have_attribute("data-smscode-state", "error")
    expect(page.locator("#code")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#submit")).to_be_enabled()
    expect(page).to_have_url(demo.url + "/login")
    tab.shot("05-wrong-code-en")

    # The right code verifies, but this phone has no account: only now does the site say so.
    page.fill("#code", code)
    page.click("#submit")
    error = page.locator("#error")
    expect(error).to_contain_text("No account for this phone.")
    expect(error.locator("a")).to_have_attribute("href", "/signup")
    tab.shot("06-unknown-phone-en")

    page.click("#lang-zh")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("h1")).to_have_text("登录")


def test_countdown_survives_a_reload(
    browser: Browser, tabs: list[Tab], slow_demo: DemoSite
) -> None:
    tab = _tab(browser, tabs, "zh-CN")
    page = tab.page
    page.goto(slow_demo.url + "/signup")
    page.click("#send-code")
    expect(page.locator("#phone-message")).to_have_text("请输入手机号。")  # checked in the page

    _request_code(tab, slow_demo, "signup")
    button = page.locator("#send-code")
    expect(button).to_have_text(re.compile(r"^重新发送 \((5\d|60)s\)$"))

    page.reload()
    expect(button).to_be_disabled()
    expect(button).to_have_text(re.compile(r"^重新发送 \((4\d|5\d)s\)$"))
    before = int(COUNTDOWN.search(button.inner_text()).group(1))
    page.wait_for_timeout(1500)
    assert int(COUNTDOWN.search(button.inner_text()).group(1)) < before  # still counting
    tab.shot("07-countdown-after-reload-zh")

    page.fill("#phone", OTHER_PHONE)  # another number has no wait
    expect(button).to_be_enabled()
    expect(button).to_have_text("获取验证码")
    page.fill("#phone", "+86 138 0013 8000")  # the same number, spelt another way
    expect(button).to_be_disabled()


def test_throttled_answer_is_shown_and_counted_down(
    browser: Browser, tabs: list[Tab], slow_demo: DemoSite
) -> None:
    first = _tab(browser, tabs, "zh-CN")
    first.page.goto(slow_demo.url + "/login")
    _request_code(first, slow_demo, "login")

    # Another browser (no stored countdown) asks for the same phone: the server says 429.
    second = _tab(browser, tabs, "zh-CN")
    page = second.page
    page.goto(slow_demo.url + "/signup")
    page.fill("#phone", PHONE)
    with page.expect_response("**/sms/send") as answer:
        page.click("#send-code")
    response = answer.value
    body = response.json()
    assert response.status == 429 and body["error"] == "throttled"
    assert 0 < body["retry_after"] <= 60
    assert int(response.headers["retry-after"]) == body["retry_after"]
    assert CJK.search(body["message"])  # zh page, zh answer
    message = page.locator("#phone-message")
    expect(message).to_have_text(body["message"])
    expect(message).to_have_attribute("data-smscode-state", "error")
    button = page.locator("#send-code")
    expect(button).to_be_disabled()
    expect(button).to_have_text(re.compile(r"^重新发送 \(\d+s\)$"))
    seconds = int(COUNTDOWN.search(button.inner_text()).group(1))
    assert body["retry_after"] - 2 <= seconds <= body["retry_after"]
    second.shot("08-throttled-zh")


# -- the helper without the demo ---------------------------------------------------------------
README_FORM_MARKER = "<!-- the browser test tests/test_demo_browser.py serves exactly this form -->"


def _readme_form() -> str:
    """The ten-line form of the README's front-end helper section, as printed there."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(re.escape(README_FORM_MARKER) + r"\n```html\n(.*?)^```$", text, re.M | re.S)
    assert found, "the README's helper example is missing"
    return found.group(1)


MINIMAL_PAGE = (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
    "<title>Minimal</title></head><body>\n" + _readme_form() + "</body></html>"
)
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'"
)


def _minimal_app() -> Flask:
    app = Flask("minimal")
    app.config.update(
        SECRET_KEY="minimal-page-test", TESTING=True, SMSCODE_TEST_NUMBERS={PHONE: "246810"}
    )
    app.register_blueprint(sms_bp)

    @app.get("/")
    def form() -> str:
        return render_template_string(MINIMAL_PAGE)

    @app.post("/done")
    def done() -> tuple[str, int] | str:
        try:
            verified = check_token(request.form.get("token", ""), purpose="signup")
        except InvalidToken:
            return "refused", 400
        return f"verified {verified.phone}"

    @app.after_request
    def strict(response: Any) -> Any:
        response.headers["Content-Security-Policy"] = STRICT_CSP
        return response

    return app


def test_helper_on_a_minimal_page_under_a_strict_csp(browser: Browser, tabs: list[Tab]) -> None:
    tab = _tab(browser, tabs, "en-US")
    page = tab.page
    with live_server(_minimal_app()) as url:
        with page.expect_response(re.compile(r"/sms/static/smscode\.js")) as script:
            page.goto(url + "/")
        assert script.value.status == 200
        assert script.value.url.endswith(f"/sms/static/smscode.js?v={__version__}")
        assert "immutable" in script.value.headers["cache-control"]
        assert page.evaluate("window.SmsCode.version") == __version__

        page.fill("[data-smscode-code]", "246810")
        page.click("text=Sign up")  # no phone yet: the helper says so, nothing is sent
        expect(page.locator("[data-smscode-message]")).to_have_text("Enter your phone number.")

        page.fill("[data-smscode-phone]", PHONE)
        with page.expect_response("**/sms/send") as sent:
            page.click("[data-smscode-send]")
        assert sent.value.json()["ok"] is True
        send_button = page.locator("[data-smscode-send]")
        expect(send_button).to_be_disabled()
        expect(send_button).to_have_text(re.compile(r"^Resend \(\d+s\)$"))
        expect(page.locator("[data-smscode-message]")).to_contain_text(MASKED)
        tab.shot("09-minimal-page-en")

        page.click("text=Sign up")
        expect(page.locator("body")).to_have_text(f"verified +86{PHONE}")
        assert page.url == url + "/done"
    assert not any("Content Security Policy" in e for e in tab.console_errors)
