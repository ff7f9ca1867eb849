"""Cross-origin protection in a real browser (issue 15): headless Chromium on a page of
another site (``localhost`` against the app's ``127.0.0.1``) submits a plain form, a
multipart form and a no-cors ``fetch`` to ``/sms/send``: each is refused with 403
``cross_site_request`` and no code is sent. The same form on the app's own origin sends.

The browser sets ``Origin`` and ``Sec-Fetch-Site`` itself: nothing here fakes them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import Browser, sync_playwright

from flask_smscode import sms_bp
from flask_smscode.metrics import STATS
from flask_smscode.signals import code_sent
from tests.servers.live_server import live_server

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
PHONE = "13800138000"
FORM = """<!doctype html><title>form</title>
<form id="f" method="post" action="{action}" enctype="{enctype}">
<input name="phone" value="{phone}"></form>
<script>document.getElementById("f").submit()</script>"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; scripts/test.sh does)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


def _app(name: str) -> Flask:
    app = Flask(name)
    app.config.update(SECRET_KEY="browser-test", TESTING=True, SMSCODE_SENDER="console")
    return app


def _refusals() -> int:
    counts = STATS.snapshot()["sends"]
    return sum(n for (_, outcome), n in counts.items() if outcome == "cross_site_request")


def test_a_cross_site_form_in_chromium_sends_nothing(browser: Browser) -> None:
    victim = _app("victim")
    victim.register_blueprint(sms_bp)
    attacker = _app("attacker")
    sent: list[Any] = []

    def on_sent(sender: Any, **extra: Any) -> None:
        sent.append(extra.get("phone"))

    with live_server(victim) as victim_url, live_server(attacker) as attacker_url:
        action = f"{victim_url}/sms/send"

        @victim.get("/own-form")
        def own_form() -> str:
            return FORM.format(action="/sms/send", enctype="multipart/form-data", phone=PHONE)

        @attacker.get("/form/<kind>")
        def attack_form(kind: str) -> str:
            enctype = (
                "multipart/form-data"
                if kind == "multipart"
                else ("application/x-www-form-urlencoded")
            )
            return FORM.format(action=action, enctype=enctype, phone=PHONE)

        @attacker.get("/blank")
        def blank() -> str:
            return "<!doctype html><title>blank</title>"

        # Another site: the same loopback server under another host name.
        evil = attacker_url.replace("127.0.0.1", "localhost")
        before = _refusals()
        context = browser.new_context()
        try:
            with code_sent.connected_to(on_sent, victim):
                page = context.new_page()
                for kind in ("urlencoded", "multipart"):
                    with page.expect_response(action) as answer:
                        page.goto(f"{evil}/form/{kind}")
                    assert answer.value.status == 403
                    assert answer.value.json()["error"] == "cross_site_request"
                    headers = answer.value.request.all_headers()
                    assert headers.get("sec-fetch-site") == "cross-site", headers
                page.goto(f"{evil}/blank")
                page.evaluate(
                    """url => fetch(url, {method: "POST", mode: "no-cors",
                        body: new URLSearchParams({phone: "13800138000"})})""",
                    action,
                )
                assert _refusals() - before == 3
                assert sent == []
                # The same form on the app's own origin sends the code.
                with page.expect_response(action) as answer:
                    page.goto(f"{victim_url}/own-form")
                assert answer.value.status == 200, answer.value.text()
                assert answer.value.request.all_headers().get("sec-fetch-site") == "same-origin"
                assert sent == ["+8613800138000"]
        finally:
            context.close()
