"""The newcomer's flow in a real browser: ``python demo_app.py`` with no configuration,
then sign up, log out, log in, and a wrong code, in headless Chromium through Playwright.

The code is read from the demo's own terminal output, the way a newcomer reads it.
Screenshots: /tmp/demo-account.png (signed in), /tmp/demo-login-error.png (a wrong code).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
PHONE = "13800138000"
MASKED = "138****8000"
# The resend wait is per phone (all purposes) and 60 s by default; the flow sends to one phone
# for signup and then for login, so the demo runs with a 1 s wait (the test also waits that
# second out before the second send).
RESEND_SECONDS = 1
START_TIMEOUT = 20.0
TIMEOUT_MS = 10_000


class DemoProcess:
    """``python demo_app.py`` on a free port, its terminal output collected by a thread."""

    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("SMSCODE_")
               and key not in {"REDIS_URL", "SECRET_KEY", "FLASK_DEBUG", "HOST"}}
        env.update(PORT=str(port), PYTHONUNBUFFERED="1",
                   SMSCODE_RESEND_INTERVAL_SECONDS=str(RESEND_SECONDS))
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, "demo_app.py"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, encoding="utf-8")
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_until_up(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"demo_app.py exited with {self.process.returncode}:\n{self.output}")
            try:
                with urllib.request.urlopen(self.url + "/login", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        pytest.fail(f"demo_app.py did not answer on {self.url}:\n{self.output}")

    def mark(self) -> int:
        with self._changed:
            return len(self.lines)

    def code_since(self, mark: int, purpose: str, timeout: float = 10.0) -> str:
        """The code the console sender printed for ``purpose`` after line ``mark``."""
        pattern = re.compile(rf"code (\d{{4,10}}) sent to {re.escape(MASKED)} for {purpose}\b")
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines[mark:]:
                    found = pattern.search(line)
                    if found:
                        return found.group(1)
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no {purpose} code in the demo's output:\n{self.output}")
                self._changed.wait(left)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo_server() -> Iterator[DemoProcess]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)")
    server = DemoProcess(_free_port())
    try:
        server.wait_until_up()
        yield server
    finally:
        server.stop()


@pytest.fixture
def demo_page(demo_server: DemoProcess) -> Iterator[Page]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 800, "height": 760})
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
            context.close()
        finally:
            browser.close()


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10 ** len(code):0{len(code)}d}"


def _request_code(page: Page, server: DemoProcess, purpose: str) -> str:
    """Click "get code", check the countdown starts, and read the code from the terminal."""
    mark = server.mark()
    page.fill("#phone", PHONE)
    page.click("#send-code")
    # The countdown lasts RESEND_SECONDS; poll every animation frame so it cannot slip by.
    page.wait_for_function(
        """() => { const b = document.querySelector('#send-code');
                   return b.disabled && /^重新发送 \\(\\d+s\\)$/.test(b.textContent); }""",
        polling="raf")
    expect(page.locator("#notice")).to_contain_text(f"Code sent to {MASKED}")
    code = server.code_since(mark, purpose)
    # ... and it ends: the button comes back as "resend".
    expect(page.locator("#send-code")).to_be_enabled()
    expect(page.locator("#send-code")).to_have_text("重新发送 Resend")
    return code


def test_newcomer_signs_up_logs_out_and_logs_in(demo_server: DemoProcess, demo_page: Page) -> None:
    page = demo_page
    banner = demo_server.output
    assert f"open {demo_server.url}/" in banner and "memory://" in banner
    assert "the code will be printed below" in banner

    page.goto(demo_server.url + "/")
    expect(page).to_have_url(demo_server.url + "/login")
    page.click("#to-signup")
    expect(page).to_have_url(demo_server.url + "/signup")

    code = _request_code(page, demo_server, "signup")
    signup_sent = time.monotonic()
    page.fill("#code", code)
    page.fill("#name", "小明 Ming")
    page.click("#submit")
    expect(page).to_have_url(demo_server.url + "/account")
    signed_in = page.locator("#signed-in")
    expect(signed_in).to_contain_text("已登录")
    expect(signed_in).to_contain_text(f"Signed in as {MASKED} (小明 Ming)")
    assert PHONE not in page.content()
    page.screenshot(path="/tmp/demo-account.png", full_page=True)

    page.click("#logout")
    expect(page).to_have_url(demo_server.url + "/login")
    expect(page.locator("#notice")).to_contain_text("You have signed out")
    page.goto(demo_server.url + "/account")
    expect(page).to_have_url(demo_server.url + "/login")

    # The resend wait is per phone across purposes: let the signup send's second pass.
    time.sleep(max(0.0, signup_sent + RESEND_SECONDS + 0.2 - time.monotonic()))
    code = _request_code(page, demo_server, "login")
    page.fill("#code", code)
    page.click("#submit")
    expect(page).to_have_url(demo_server.url + "/account")
    expect(page.locator("#signed-in")).to_contain_text(f"Signed in as {MASKED} (小明 Ming)")


def test_wrong_code_shows_attempts_left_then_unknown_phone(demo_server: DemoProcess,
                                                          demo_page: Page) -> None:
    page = demo_page
    page.goto(demo_server.url + "/login")
    code = _request_code(page, demo_server, "login")

    page.fill("#code", _wrong(code))
    page.click("#submit")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("验证码不正确")
    expect(error).to_contain_text("还可以再试 4 次")
    expect(error).to_contain_text("Wrong code: 4 attempts left.")
    expect(page).to_have_url(demo_server.url + "/login")
    expect(page.locator("#submit")).to_be_enabled()
    page.screenshot(path="/tmp/demo-login-error.png", full_page=True)

    # The right code verifies, but this phone has no account: the page offers signup.
    page.fill("#code", code)
    page.click("#submit")
    expect(error).to_contain_text("该手机号未注册 No account for this phone")
    expect(error.locator("a")).to_have_attribute("href", "/signup")
    page.goto(demo_server.url + "/account")
    expect(page).to_have_url(demo_server.url + "/login")


def test_client_side_checks_and_invalid_phone(demo_server: DemoProcess, demo_page: Page) -> None:
    page = demo_page
    page.goto(demo_server.url + "/signup")
    error = page.locator("#error")
    page.click("#send-code")
    expect(error).to_contain_text("请输入手机号。 Enter your phone number.")
    page.fill("#phone", "12345")
    page.click("#send-code")
    expect(error).to_contain_text("This is not a valid mobile phone number.")
    expect(page.locator("#send-code")).to_have_text("获取验证码 Get code")
    expect(page.locator("#send-code")).to_be_enabled()
    page.fill("#phone", PHONE)
    page.fill("#code", "123456")
    page.click("#submit")
    expect(error).to_contain_text("Enter a display name.")
    page.fill("#name", "Ming")
    page.click("#submit")
    expect(error).to_contain_text("The code has expired or was never sent")
