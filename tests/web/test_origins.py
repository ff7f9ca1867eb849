"""Cross-origin protection and CORS over real HTTP (issue 15, section 1): a live werkzeug
server, a private redis-server, the real Aliyun sender and the loopback Dysmsapi server
that checks signatures. Browsers' headers are sent as a browser sends them."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests

from flask_smscode.metrics import STATS
from tests.helpers import PHONE
from tests.security.support import assert_error, assert_untouched
from tests.servers.live_server import live_server

pytestmark = [pytest.mark.redis, pytest.mark.parametrize("store_uri", ["redis"], indirect=True)]

EVIL = "https://evil.example"
SPA = "https://app.example.com"
FORM = {"Origin": EVIL, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}


def refusals(endpoint: str) -> int:
    kind = "sends" if endpoint == "send" else "verifies"
    counts = STATS.snapshot()[kind]
    return sum(n for (_, outcome), n in counts.items() if outcome == "cross_site_request")


def cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control")}


@pytest.mark.parametrize("endpoint", ["send", "verify"])
def test_a_cross_site_form_is_refused_nothing_sent_or_stored(
    make_app, sms_server, redis_url, endpoint, caplog
):
    caplog.set_level(logging.INFO, logger="flask_smscode")
    app = make_app(SMSCODE_IP_SEND_LIMITS="1/hour", SMSCODE_IP_VERIFY_LIMITS="1/hour")
    fields = {"phone": PHONE, "code": "123456"}
    before = refusals(endpoint)
    with live_server(app) as url:
        answers = [
            requests.post(f"{url}/sms/{endpoint}", data=fields, headers=FORM, timeout=5),
            # multipart, as <form enctype="multipart/form-data"> posts it
            requests.post(
                f"{url}/sms/{endpoint}",
                files={k: (None, v) for k, v in fields.items()},
                headers=FORM,
                timeout=5,
            ),
            # an old browser: no Sec-Fetch-Site, only a foreign Origin
            requests.post(
                f"{url}/sms/{endpoint}", data=fields, headers={"Origin": EVIL}, timeout=5
            ),
            # another subdomain of the same site is still another origin
            requests.post(
                f"{url}/sms/{endpoint}",
                data=fields,
                headers={"Origin": "https://a.example", "Sec-Fetch-Site": "same-site"},
                timeout=5,
            ),
        ]
        for response in answers:
            body = assert_error(response, 403, "cross_site_request")
            assert set(body) == {"ok", "error", "message"}
            assert response.headers["Cache-Control"] == "no-store"
            assert not cors_headers(response)
        # Nothing was counted either: the client's 1/hour budget is whole.
        assert requests.post(f"{url}/sms/{endpoint}", data=fields, timeout=5).status_code in (
            200,
            400,  # verify: no live code
        )
    assert refusals(endpoint) - before == 4
    if endpoint == "send":
        assert len(sms_server.sent) == 1  # only the header-less request
    else:
        assert sms_server.sent == []
        assert_untouched(app, redis_url=redis_url)
    lines = [r.getMessage() for r in caplog.records if "cross_site_request" in r.getMessage()]
    assert len(lines) == 4
    assert all(f"origin={EVIL}" in line or "origin=https://a.example" in line for line in lines)


def test_same_origin_and_header_less_clients_pass(make_app, sms_server):
    app = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0)
    with live_server(app) as url:
        for headers in (
            {"Origin": url, "Sec-Fetch-Site": "same-origin"},  # the JS helper in Chromium
            {"Origin": url},  # a browser without Fetch Metadata
            {"Sec-Fetch-Site": "none"},  # typed in the address bar
            {},  # curl, a mobile app, a server
        ):
            response = requests.post(
                f"{url}/sms/send", json={"phone": PHONE}, headers=headers, timeout=5
            )
            assert response.status_code == 200, (headers, response.text)
            assert not cors_headers(response)  # no trusted origins: no CORS at all
    assert len(sms_server.sent) == 4


@pytest.mark.parametrize("credentials", [False, True])
def test_a_trusted_origin_gets_a_cors_answer(make_app, sms_server, credentials):
    app = make_app(SMSCODE_TRUSTED_ORIGINS=[SPA], SMSCODE_CORS_CREDENTIALS=credentials)
    with live_server(app) as url:
        for path in ("/sms/send", "/sms/verify"):
            preflight = requests.options(
                url + path,
                headers={
                    "Origin": SPA,
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "content-type,idempotency-key",
                    "Sec-Fetch-Site": "same-site",
                    "Sec-Fetch-Mode": "cors",
                },
                timeout=5,
            )
            assert preflight.status_code == 200
            headers = cors_headers(preflight)
            assert headers.pop("Access-Control-Allow-Origin") == SPA
            assert headers.pop("Access-Control-Allow-Methods") == "POST"
            allowed = headers.pop("Access-Control-Allow-Headers").lower()
            assert "content-type" in allowed and "idempotency-key" in allowed
            assert int(headers.pop("Access-Control-Max-Age")) > 0
            if credentials:
                assert headers.pop("Access-Control-Allow-Credentials") == "true"
            assert headers == {}
            assert "Origin" in preflight.headers["Vary"]
        sent = requests.post(
            f"{url}/sms/send",
            json={"phone": PHONE},
            headers={"Origin": SPA, "Sec-Fetch-Site": "same-site", "Idempotency-Key": "k-1"},
            timeout=5,
        )
        assert sent.status_code == 200, sent.text
        assert sent.headers["Access-Control-Allow-Origin"] == SPA
        assert "Retry-After" in sent.headers["Access-Control-Expose-Headers"]
        assert ("Access-Control-Allow-Credentials" in sent.headers) is credentials
        code = sms_server.last_code(PHONE)
        verified = requests.post(
            f"{url}/sms/verify",
            json={"phone": PHONE, "code": code},
            headers={"Origin": SPA, "Sec-Fetch-Site": "cross-site"},
            timeout=5,
        )
        assert verified.status_code == 200 and verified.json()["token"]
        assert verified.headers["Access-Control-Allow-Origin"] == SPA
        # A refusal the page must read (429 with Retry-After) carries the CORS answer too.
        again = requests.post(
            f"{url}/sms/send", json={"phone": PHONE}, headers={"Origin": SPA}, timeout=5
        )
        assert again.status_code == 429
        assert again.headers["Access-Control-Allow-Origin"] == SPA


def test_an_untrusted_origin_gets_no_cors_header(make_app, sms_server):
    app = make_app(SMSCODE_TRUSTED_ORIGINS=[SPA])
    with live_server(app) as url:
        preflight = requests.options(
            f"{url}/sms/send",
            headers={"Origin": EVIL, "Access-Control-Request-Method": "POST"},
            timeout=5,
        )
        assert preflight.status_code == 200
        assert not cors_headers(preflight)
        assert "Origin" in preflight.headers["Vary"]
        refused = requests.post(
            f"{url}/sms/send",
            json={"phone": PHONE},
            headers={"Origin": f"{SPA}.evil.example", "Sec-Fetch-Site": "cross-site"},
            timeout=5,
        )
        assert_error(refused, 403, "cross_site_request")
        assert not cors_headers(refused)
    assert sms_server.sent == []


def test_protection_can_be_turned_off(make_app, sms_server):
    app = make_app(SMSCODE_CROSS_ORIGIN_PROTECTION=False)
    with live_server(app) as url:
        response = requests.post(f"{url}/sms/send", data={"phone": PHONE}, headers=FORM, timeout=5)
        assert response.status_code == 200
        assert not cors_headers(response)
    assert len(sms_server.sent) == 1


def test_the_report_receiver_is_not_checked(make_app, sms_server):
    """Alibaba posts reports server to server without Origin; a browser-like header does
    not turn the receiver's own answers into cross_site_request either (its defences are
    the path secret and the source allowlist)."""
    secret = "r" * 40
    app = make_app(SMSCODE_ALIYUN_REPORT_SECRET=secret)
    with live_server(app) as url:
        for headers in ({}, FORM):
            response = requests.post(
                f"{url}/sms/reports/{secret}", data=b"[]", headers=headers, timeout=5
            )
            assert response.status_code == 200, response.text
            assert response.json()["code"] == 0
