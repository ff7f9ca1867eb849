"""WebOTP and one-time-code autofill of the front-end helper (static/smscode.js), in
headless Chromium through Playwright.

A small page of a bare app (the blueprint, the helper, a ``/done`` view that checks the
token) is served on loopback by tests/servers/live_server.py; the code goes out through the
real ``aliyun`` sender to the loopback Dysmsapi server, whose account has a verification
template ending in the origin-bound line ``@127.0.0.1 #${code}`` (the form the README tells
to submit to Alibaba).

Why the API is stubbed, and only at the browser level: desktop Chromium exposes
``OTPCredential`` but has no SMS inbox (its ``navigator.credentials.get({otp})`` waits until
aborted). An init script (``page.add_init_script``, run before any page script) defines
``OTPCredential`` and wraps ``navigator.credentials.get``; when asked for ``{otp: ...}`` it
asks the test, through a Playwright binding, for the SMS the loopback server recorded, and
plays the browser's part of WebOTP: the code is handed over only when the message's last line
is ``@<this page's host> #<code>``. The helper itself is served and run unchanged. The
"absent" case deletes ``OTPCredential`` the same way (Firefox, desktop Safari, old WebViews).

Screenshots go to ``test-output/screenshots/webotp-*.png`` (git-ignored).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, render_template_string, request
from playwright.sync_api import Browser, Page, expect, sync_playwright

from flask_smscode import InvalidToken, check_token, sms_bp
from tests.helpers import PHONE
from tests.servers.dysmsapi_server import DysmsapiServer
from tests.servers.live_server import live_server

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
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
TIMEOUT_MS = 10_000
OTHER_PHONE = "13900139000"
MASKED = "138****8000"
HOST = "127.0.0.1"  # live_server's host: the page's origin is http://127.0.0.1:<port>
TEMPLATE_CODE = "SMS_WEBOTP"
# The template of the README's "Phishing-resistant autofill (WebOTP)" section, this host.
TEMPLATE_TEXT = "您的验证码为${code}，5分钟内有效，请勿泄露。\n\n@" + HOST + " #${code}"
# The last line of an origin-bound SMS (WICG sms-one-time-codes): "@host #code".
ORIGIN_BOUND = re.compile(r"@(?P<host>[^\s#@]+) #(?P<code>[^\s#@]+)")

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>WebOTP</title></head><body>
<form method="post" action="/done" data-smscode data-smscode-purpose="signup" {{ extra|safe }}>
  <input data-smscode-phone type="tel" name="phone">
  <button type="button" data-smscode-send>Get code</button>
  <input data-smscode-code name="code" maxlength="6"
    {%- if inputmode %} inputmode="{{ inputmode }}"{% endif %}>
  <input type="hidden" name="token" data-smscode-token>
  <p data-smscode-message></p> <button>Sign up</button>
</form>
<script src="{{ smscode_script_url() }}"></script>
</body></html>
"""

# The browser level: run before the page's own scripts. %(api)s: whether OTPCredential exists.
STUB = """
(() => {
  const api = %(api)s;
  if (!api) {
    delete window.OTPCredential;
  } else if (!("OTPCredential" in window)) {
    window.OTPCredential = function OTPCredential() {};
  }
  window.__otpCalls = [];
  const credentials = navigator.credentials;
  const realGet = credentials.get.bind(credentials);
  credentials.get = function (options) {
    if (!options || !options.otp) {
      return realGet(options);
    }
    const signal = options.signal;
    const asked = {
      transport: options.otp.transport,
      signal: signal instanceof AbortSignal,
      host: location.hostname,
    };
    window.__otpCalls.push(asked);
    return new Promise((resolve, reject) => {
      if (signal) {
        signal.addEventListener("abort", () => {
          window.__webotpInbox("abort", asked);
          reject(new DOMException("The operation was aborted.", "AbortError"));
        });
      }
      window.__webotpInbox("get", asked).then((code) => {
        if (code !== null && !(signal && signal.aborted)) {
          resolve({ id: "", type: "otp", code: code });
        }
      });
    });
  };
})();
"""


class SmsInbox:
    """The phone and the browser of WebOTP, played by the test: ``get`` answers the code of
    the newest SMS the loopback server recorded for ``phone`` if its last line binds it to
    the asking page's host (else ``None``: the request stays pending, as a real one would);
    ``hold`` keeps every request pending. Records what was asked and what was aborted."""

    def __init__(self, server: DysmsapiServer, *, hold: bool = False) -> None:
        self.server = server
        self.hold = hold
        self.phone = PHONE
        self.asked: list[dict[str, Any]] = []
        self.aborted: list[dict[str, Any]] = []

    def __call__(self, kind: str, asked: dict[str, Any]) -> str | None:
        if kind == "abort":
            self.aborted.append(asked)
            return None
        self.asked.append(asked)
        if self.hold:
            return None
        lines = self.server.last_sms(self.phone).content.splitlines()
        found = ORIGIN_BOUND.fullmatch(lines[-1]) if lines else None
        if found is None or found["host"] != asked["host"]:
            return None
        return found["code"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; scripts/test.sh does)")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _app(aliyun_config: dict[str, Any], **config: Any) -> Flask:
    """The bare app: the blueprint, the page (``?webotp=off`` adds the opt-out attribute,
    ``?inputmode=...`` the code field's own ``inputmode``) and ``/done``, which checks the
    token as the README's views do."""
    app = Flask("webotp")
    app.config.update(
        SECRET_KEY="webotp-browser-test",
        TESTING=True,
        SMSCODE_STORAGE_URI="memory://",
        SMSCODE_RESEND_INTERVAL_SECONDS=1,
        **aliyun_config,
    )
    app.config.update(SMSCODE_ALIYUN_TEMPLATE_CODE=TEMPLATE_CODE, **config)
    app.register_blueprint(sms_bp)

    @app.get("/")
    def form() -> str:
        extra = 'data-smscode-webotp="off"' if request.args.get("webotp") == "off" else ""
        return render_template_string(PAGE, extra=extra, inputmode=request.args.get("inputmode"))

    @app.post("/done")
    def done() -> tuple[str, int] | str:
        try:
            verified = check_token(request.form.get("token", ""), purpose="signup")
        except InvalidToken:
            return "refused", 400
        return f"verified {verified.phone}"

    return app


class Tab:
    """A context and page with the stub (or the API deleted), the inbox bound, and the
    page's errors collected (a rejected promise nobody handled is one)."""

    def __init__(self, browser: Browser, inbox: SmsInbox, *, api: bool) -> None:
        self.context = browser.new_context(locale="en-US", viewport={"width": 640, "height": 420})
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.expose_function("__webotpInbox", inbox)
        self.page.add_init_script(STUB % {"api": json.dumps(api)})
        self.verify_requests: list[str] = []
        self.page.on(
            "request",
            lambda req: self.verify_requests.append(req.url) if "/sms/verify" in req.url else None,
        )

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(SCREENSHOTS / f"webotp-{name}.png"), full_page=True)


@pytest.fixture
def tabs(browser: Browser) -> Iterator[list[Tab]]:
    opened: list[Tab] = []
    yield opened
    for tab in opened:
        errors = tab.errors
        tab.context.close()
        assert errors == [], errors


def _send(page: Page) -> dict[str, Any]:
    """Click "Get code" and wait until the helper has handled the answer (its ``smscode:sent``
    event comes after the WebOTP request is made, if it is made at all)."""
    page.evaluate(
        "window.__sent = false; document.addEventListener("
        "'smscode:sent', () => { window.__sent = true; }, { once: true })"
    )
    with page.expect_response("**/sms/send") as answer:
        page.click("[data-smscode-send]")
    body: dict[str, Any] = answer.value.json()
    assert body["ok"] is True, body
    page.wait_for_function("window.__sent === true")
    return body


@pytest.fixture
def server(sms_server: DysmsapiServer) -> DysmsapiServer:
    """The loopback account with the origin-bound verification template, approved."""
    sms_server.set_template(TEMPLATE_CODE, TEMPLATE_TEXT)
    return sms_server


def test_code_from_the_sms_fills_the_field_and_submits(
    browser: Browser, tabs: list[Tab], server: DysmsapiServer, aliyun_config: dict[str, Any]
) -> None:
    inbox = SmsInbox(server)
    tab = Tab(browser, inbox, api=True)
    tabs.append(tab)
    page = tab.page
    with live_server(_app(aliyun_config)) as url:
        page.goto(url + "/")
        page.fill("[data-smscode-phone]", PHONE)
        with (
            page.expect_request("**/sms/verify") as verify_request,
            page.expect_response("**/sms/verify") as verify_answer,
        ):
            page.click("[data-smscode-send]")
        code = server.last_code(PHONE)
        sms = server.last_sms(PHONE)
        # What the phone shows: the sign first, the origin-bound line last.
        assert sms.content.startswith("【TestSign】您的验证码为" + code)
        assert sms.content.endswith(f"\n\n@{HOST} #{code}")
        # The field was filled with the SMS's code and the helper verified it unasked.
        assert verify_request.value.post_data_json == {
            "phone": PHONE,
            "code": code,
            "purpose": "signup",
        }
        # The server answered verified (its body is gone with the page: the form was
        # submitted with the token, which /done accepts).
        assert verify_answer.value.status == 200
        expect(page.locator("body")).to_have_text(f"verified +86{PHONE}")
        assert page.url == url + "/done"
        tab.shot("1-verified-en")
    # One request, for an SMS, with a signal to end it; it was answered, not aborted.
    assert inbox.asked == [{"transport": ["sms"], "signal": True, "host": HOST}]
    assert inbox.aborted == []


def test_code_field_gets_one_time_code_autocomplete(
    browser: Browser, tabs: list[Tab], server: DysmsapiServer, aliyun_config: dict[str, Any]
) -> None:
    tab = Tab(browser, SmsInbox(server), api=False)
    tabs.append(tab)
    page = tab.page
    with live_server(_app(aliyun_config)) as url:
        page.goto(url + "/")
        field = page.locator("[data-smscode-code]")
        expect(field).to_have_attribute("autocomplete", "one-time-code")
        expect(field).to_have_attribute("inputmode", "numeric")
        expect(field).to_have_attribute("maxlength", "6")  # the page's own attributes stay
        expect(field).to_have_attribute("name", "code")

        # A value the page chose is kept (letter codes want a text keyboard).
        page.goto(url + "/?inputmode=text")
        field = page.locator("[data-smscode-code]")
        expect(field).to_have_attribute("autocomplete", "one-time-code")
        expect(field).to_have_attribute("inputmode", "text")


def _assert_nothing_changed(tab: Tab, url: str) -> None:
    """No WebOTP request was made, the code field is empty, nothing was verified: the page
    is where it was, waiting for the code to be typed."""
    page = tab.page
    assert page.evaluate("window.__otpCalls") == []
    page.wait_for_timeout(300)  # room for a wrongly started verify to show up
    expect(page.locator("[data-smscode-code]")).to_have_value("")
    assert tab.verify_requests == []
    assert page.url.startswith(url + "/")
    expect(page.locator("[data-smscode-message]")).to_contain_text(MASKED)


def test_without_the_api_nothing_changes(
    browser: Browser, tabs: list[Tab], server: DysmsapiServer, aliyun_config: dict[str, Any]
) -> None:
    inbox = SmsInbox(server)
    tab = Tab(browser, inbox, api=False)
    tabs.append(tab)
    page = tab.page
    with live_server(_app(aliyun_config)) as url:
        page.goto(url + "/")
        assert page.evaluate("'OTPCredential' in window") is False
        page.fill("[data-smscode-phone]", PHONE)
        _send(page)
        _assert_nothing_changed(tab, url)
        tab.shot("2-no-api-en")
        # Typing the code still works as before.
        page.fill("[data-smscode-code]", server.last_code(PHONE))
        page.click("text=Sign up")
        expect(page.locator("body")).to_have_text(f"verified +86{PHONE}")
    assert inbox.asked == []


@pytest.mark.parametrize("how", ["attribute", "option"])
def test_opt_out(
    how: str,
    browser: Browser,
    tabs: list[Tab],
    server: DysmsapiServer,
    aliyun_config: dict[str, Any],
) -> None:
    """``data-smscode-webotp="off"``, or ``SmsCode.bind(form, {webotp: false})``: the API is
    there, the helper does not use it (autocomplete stays)."""
    inbox = SmsInbox(server)
    tab = Tab(browser, inbox, api=True)
    tabs.append(tab)
    page = tab.page
    with live_server(_app(aliyun_config)) as url:
        page.goto(url + ("/?webotp=off" if how == "attribute" else "/"))
        if how == "option":
            page.evaluate(
                "window.SmsCode.bind(document.querySelector('[data-smscode]'), {webotp: false})"
            )
        assert page.evaluate("'OTPCredential' in window") is True
        expect(page.locator("[data-smscode-code]")).to_have_attribute(
            "autocomplete", "one-time-code"
        )
        page.fill("[data-smscode-phone]", PHONE)
        _send(page)
        _assert_nothing_changed(tab, url)
    assert inbox.asked == []


def test_pending_request_ends_on_a_new_send_and_on_a_typed_code(
    browser: Browser, tabs: list[Tab], server: DysmsapiServer, aliyun_config: dict[str, Any]
) -> None:
    """The SMS has not come (the inbox holds it): sending to another number aborts the first
    request; verifying a code typed by hand aborts the second."""
    inbox = SmsInbox(server, hold=True)
    tab = Tab(browser, inbox, api=True)
    tabs.append(tab)
    page = tab.page
    with live_server(_app(aliyun_config)) as url:
        page.goto(url + "/")
        page.fill("[data-smscode-phone]", PHONE)
        _send(page)
        assert len(page.evaluate("window.__otpCalls")) == 1
        assert inbox.aborted == []

        page.fill("[data-smscode-phone]", OTHER_PHONE)  # another number: no countdown
        _send(page)
        assert len(page.evaluate("window.__otpCalls")) == 2
        expect(page.locator("[data-smscode-code]")).to_have_value("")

        page.fill("[data-smscode-code]", server.last_code(OTHER_PHONE))
        page.click("text=Sign up")
        expect(page.locator("body")).to_have_text(f"verified +86{OTHER_PHONE}")
    # Each request was for an SMS with its own signal, and each was ended.
    assert inbox.asked == [{"transport": ["sms"], "signal": True, "host": HOST}] * 2
    assert len(inbox.aborted) == 2


def test_pending_request_ends_with_the_code_lifetime(
    browser: Browser, tabs: list[Tab], server: DysmsapiServer, aliyun_config: dict[str, Any]
) -> None:
    """The request's timeout is the code's TTL (``expires_in`` of the send): a code that
    expired cannot be verified, so nothing waits for it longer."""
    inbox = SmsInbox(server, hold=True)
    tab = Tab(browser, inbox, api=True)
    tabs.append(tab)
    page = tab.page
    with live_server(_app(aliyun_config, SMSCODE_CODE_TTL_SECONDS=1)) as url:
        page.goto(url + "/")
        page.fill("[data-smscode-phone]", PHONE)
        body = _send(page)
        assert body["expires_in"] == 1
        assert inbox.aborted == []
        page.wait_for_function("window.__otpCalls.length === 1")
        page.wait_for_timeout(1_500)
        expect(page.locator("[data-smscode-code]")).to_have_value("")
    assert len(inbox.asked) == 1
    assert inbox.aborted == inbox.asked
