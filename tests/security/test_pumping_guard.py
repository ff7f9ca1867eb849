"""The SMS-pumping guard: global and per-prefix send budgets, the conversion guard that blocks a
number prefix whose codes are never typed back, and the pre-send hook (captcha) — on every
store. Each test fails if its defence is removed; the last one measures what an attack on a
demo-like app costs in SMS before the guard stops it.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_smscode import get_service
from flask_smscode.cli import smscode
from flask_smscode.core.guard import number_prefix
from flask_smscode.errors import ChallengeRequired
from flask_smscode.metrics import STATS
from tests.helpers import PHONE
from tests.security.support import RELAXED

# Numbers of one 7-digit block (+86 138 0013 ....) and of another (+86 139 0013 ....).
BLOCK_A = "+861380013"
BLOCK_B = "+861390013"
OFF = {"SMSCODE_GUARD_MIN_SENDS": 0, "SMSCODE_PREFIX_SEND_LIMITS": ""}


def in_a(i: int) -> str:
    return f"1380013{i:04d}"


def in_b(i: int) -> str:
    return f"1390013{i:04d}"


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis_cluster),
        pytest.param("sentinel", marks=pytest.mark.redis_sentinel),
    ]
)
def store_uri(request: pytest.FixtureRequest) -> str:
    """Every store: on Cluster the guard's hashes are separate slots and calls of their own."""
    if request.param == "memory":
        return "memory://"
    if request.param in ("cluster", "sentinel"):
        return str(request.getfixturevalue(f"redis_{request.param}").uri)
    return str(request.getfixturevalue("redis_url"))


_ADDRESSES = itertools.count(1)


def send(client: Any, phone: str, **kwargs: Any) -> Any:
    """A send from an address of its own unless one is given: the conversion tests are about
    prefixes, and one address cannot close a prefix for everyone (SMSCODE_GUARD_MIN_SOURCES,
    tested in tests/core/test_guard.py)."""
    n = next(_ADDRESSES)
    kwargs.setdefault("environ_base", {"REMOTE_ADDR": f"203.0.{n // 250 % 250}.{n % 250 + 1}"})
    return client.post("/sms/send", json={"phone": phone}, **kwargs)


def verify_last(client: Any, sms_server: Any, phone: str) -> Any:
    return client.post("/sms/verify", json={"phone": phone, "code": sms_server.last_code(phone)})


def guard_warnings(watch: Any, outcome: str) -> list[str]:
    return [line for line in watch.logs if "event=guard" in line and f"outcome={outcome}" in line]


def refusals() -> dict[str, int]:
    return {key[0]: count for key, count in STATS.snapshot()["guard_refusals"].items()}


def test_prefixes_are_the_block_for_mainland_mobiles_and_cc_plus_3_elsewhere():
    digits = {"86": 7, "*": 3}
    assert number_prefix("+8613800138000", digits) == BLOCK_A
    assert number_prefix("+85251234567", digits) == "+852512"
    assert number_prefix("+14155550100", digits) == "+1415"
    assert number_prefix("+447911123456", digits) == "+44791"


# -- budgets -------------------------------------------------------------------------------


def test_the_global_budget_answers_429_and_warns_once_per_window(
    make_app, sms_server, secrets_watch
):
    client = make_app(SMSCODE_GLOBAL_SEND_LIMITS="3/hour", **OFF, **RELAXED).test_client()
    before = refusals().get("global", 0)
    assert [send(client, in_b(i)).status_code for i in range(3)] == [200] * 3
    refused = [send(client, in_a(i)) for i in range(6)]
    assert {r.status_code for r in refused} == {429}
    assert {r.get_json()["error"] for r in refused} == {"throttled"}
    assert all(0 < int(r.headers["Retry-After"]) <= 3600 for r in refused)
    assert len(sms_server.sent) == 3
    assert len(guard_warnings(secrets_watch, "global_budget_exhausted")) == 1
    assert refusals().get("global", 0) - before == 6


def test_the_prefix_budget_limits_one_block_and_not_another(make_app, sms_server, secrets_watch):
    client = make_app(
        SMSCODE_PREFIX_SEND_LIMITS="3/hour", SMSCODE_GUARD_MIN_SENDS=0, **RELAXED
    ).test_client()
    assert [send(client, in_a(i)).status_code for i in range(5)] == [200, 200, 200, 429, 429]
    assert [send(client, in_b(i)).status_code for i in range(3)] == [200] * 3
    assert len(sms_server.sent) == 6
    assert len(guard_warnings(secrets_watch, "prefix_budget_exhausted")) == 1


# -- conversion ----------------------------------------------------------------------------


def test_a_low_conversion_prefix_is_blocked_and_a_healthy_one_is_not(
    make_app, sms_server, secrets_watch
):
    client = make_app(SMSCODE_GUARD_MIN_SENDS=5, **RELAXED).test_client()
    before = refusals()
    # Block B: every code is typed back. Many more sends than the threshold, never blocked.
    for i in range(12):
        assert send(client, in_b(i)).status_code == 200
        assert verify_last(client, sms_server, in_b(i)).status_code == 200
    # Block A: nobody types the codes. Five go out, then the block closes.
    assert [send(client, in_a(i)).status_code for i in range(5)] == [200] * 5
    blocked = send(client, in_a(5))
    assert blocked.status_code == 429 and blocked.get_json()["error"] == "throttled"
    assert 43000 < int(blocked.headers["Retry-After"]) <= 43200  # SMSCODE_GUARD_BLOCK_SECONDS
    assert send(client, in_a(6)).status_code == 429
    assert send(client, in_b(99)).status_code == 200
    assert len(sms_server.sent) == 12 + 5 + 1
    assert len(guard_warnings(secrets_watch, "prefix_blocked")) == 1
    assert BLOCK_A in guard_warnings(secrets_watch, "prefix_blocked")[0]
    after = refusals()
    assert after.get("conversion", 0) - before.get("conversion", 0) == 1
    assert after.get("blocked", 0) - before.get("blocked", 0) == 1


def test_a_block_does_not_stop_verifying_a_code_already_sent(make_app, sms_server):
    client = make_app(SMSCODE_GUARD_MIN_SENDS=3, **RELAXED).test_client()
    for i in range(3):
        assert send(client, in_a(i)).status_code == 200
    assert send(client, in_a(3)).status_code == 429  # blocked now
    response = verify_last(client, sms_server, in_a(0))
    assert response.status_code == 200 and response.get_json()["token"]


def test_provider_failures_are_given_back_and_do_not_block_a_prefix(make_app, sms_server):
    """An outage is not a prefix whose codes go unverified: a send the provider refused is
    taken back from every counter, the guard's included."""
    client = make_app(
        SMSCODE_GUARD_MIN_SENDS=3, SMSCODE_PREFIX_SEND_LIMITS="3/hour", **RELAXED
    ).test_client()
    sms_server.fail_next("isp.SYSTEM_ERROR", times=6)
    assert [send(client, in_a(i)).status_code for i in range(6)] == [502] * 6
    assert send(client, in_a(10)).status_code == 200


def test_operators_see_and_lift_a_block_with_the_cli(make_app, sms_server):
    app = make_app(SMSCODE_GUARD_MIN_SENDS=3, SMSCODE_GLOBAL_SEND_LIMITS="1000/day", **RELAXED)
    client = app.test_client()
    for i in range(3):
        send(client, in_a(i))
    send(client, in_b(0))
    verify_last(client, sms_server, in_b(0))
    assert send(client, in_a(3)).status_code == 429
    runner = app.test_cli_runner()
    result = runner.invoke(smscode, ["--lang", "en", "guard", "status", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["global"] == [{"limit": "1000 per 1 day", "used": 4}]
    assert data["mode"] == "enforce"
    rows = {row["prefix"]: row for row in data["prefixes"]}
    assert rows[BLOCK_A]["blocked_for"] > 43000 and rows[BLOCK_A]["sends"] == 3
    assert rows[BLOCK_A]["conversion"] == 0
    assert rows[BLOCK_B]["blocked_for"] == 0 and rows[BLOCK_B]["conversion"] == 1
    text = runner.invoke(smscode, ["--lang", "en", "guard", "status"]).output
    assert BLOCK_A in text and "43" in text and PHONE not in text
    result = runner.invoke(smscode, ["--lang", "en", "guard", "unblock", BLOCK_A])
    assert result.exit_code == 0 and "Unblocked +861380013" in result.output
    assert send(client, in_a(3)).status_code == 200
    again = runner.invoke(smscode, ["--lang", "en", "guard", "unblock", "+869999999"])
    assert "was not blocked" in again.output


# -- the pre-send hook ---------------------------------------------------------------------


def _arithmetic_hook(request: Any, phone: str, purpose: str) -> bool:
    """A stand-in for a captcha: the form must carry the answer to 3 + 4."""
    return request is not None and request.form.get("challenge") == "7"


def _raising_hook(request: Any, phone: str, purpose: str) -> None:
    if request is None or request.headers.get("X-Captcha") != "ok":
        raise ChallengeRequired()


@pytest.mark.parametrize("hook", [_arithmetic_hook, _raising_hook])
def test_the_pre_send_hook_refuses_after_the_ip_count_before_the_send(make_app, sms_server, hook):
    """The hook runs once the request is counted against its client's per-IP budget (so a
    captcha's remote verifier is called at most at that rate) and before anything else is
    counted, stored or sent (issue 15)."""
    app = make_app(
        SMSCODE_PRE_SEND_HOOK=hook,
        SMSCODE_IP_SEND_LIMITS="4/hour",
        SMSCODE_PREFIX_SEND_LIMITS="1/hour",
    )
    client = app.test_client()
    before = refusals().get("challenge", 0)
    for _ in range(3):
        refused = client.post("/sms/send", data={"phone": PHONE, "challenge": "8"})
        assert refused.status_code == 400
        assert refused.get_json()["error"] == "challenge_required"
    assert refusals().get("challenge", 0) - before == 3
    assert sms_server.sent == []
    with app.app_context():
        status = get_service().status(PHONE)
        assert status.cooldown == 0 and not any(status.sends.values())
        _, prefixes = get_service().guard_status()
        assert prefixes == []  # the prefix budget is untouched too
    # The prefix budget (1/hour) is still whole; the IP budget has its 4th request left.
    passed = client.post(
        "/sms/send", data={"phone": PHONE, "challenge": "7"}, headers={"X-Captcha": "ok"}
    )
    assert passed.status_code == 200, passed.get_json()
    assert len(sms_server.sent) == 1


def test_a_client_past_its_budget_never_reaches_the_hook(make_app, sms_server):
    """Issue 15: the hook (a remote captcha check) is called at the budget's rate, not at
    the attacker's: past SMSCODE_IP_SEND_LIMITS the answer is 429 without calling it."""
    calls: list[str] = []

    def hook(request: Any, phone: str, purpose: str) -> bool:
        calls.append(phone)
        return False

    client = make_app(SMSCODE_PRE_SEND_HOOK=hook, SMSCODE_IP_SEND_LIMITS="3/hour").test_client()
    answers = [client.post("/sms/send", data={"phone": PHONE}) for _ in range(10)]
    assert [a.status_code for a in answers] == [400] * 3 + [429] * 7
    assert {a.get_json()["error"] for a in answers[3:]} == {"throttled"}
    assert len(calls) == 3
    assert sms_server.sent == []


def test_the_hook_sees_the_normalised_phone_and_purpose(make_app, sms_server):
    seen: list[tuple[bool, str, str]] = []

    def hook(request: Any, phone: str, purpose: str) -> None:
        seen.append((request is not None, phone, purpose))

    client = make_app(SMSCODE_PRE_SEND_HOOK=hook).test_client()
    client.post("/sms/send", json={"phone": "+86 138 0013 8000", "purpose": "signup"})
    assert seen == [(True, "+8613800138000", "signup")]


# -- the measured attack ---------------------------------------------------------------------

ATTACK_NUMBERS = 1000
ATTACK_ADDRESSES = 200


def run_attack(app: Flask) -> tuple[int, dict[int, int]]:
    """1,000 numbers of one 7-digit block from 200 addresses (5 numbers each, as a botnet
    spreads them), nobody ever typing a code back. Returns the statuses seen."""
    client = app.test_client()
    statuses: dict[int, int] = {}
    for i in range(ATTACK_NUMBERS):
        address = f"198.51.{i % ATTACK_ADDRESSES // 250}.{i % ATTACK_ADDRESSES % 250 + 1}"
        response = send(client, in_a(i), environ_base={"REMOTE_ADDR": address})
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    return statuses.get(200, 0), statuses


def test_an_attack_on_one_prefix_costs_16_sms_before_the_guard_stops_it(
    make_app: Callable[..., Flask],
    sms_server: Any,
    secrets_watch: Any,
    record_property: Callable[[str, object], None],
    caplog: Any,
) -> None:
    """The demo's settings are the package defaults: per-IP 20/hour, per-phone 5/hour,
    prefix 100/hour, conversion guard 16 sends in a day at 20 %. The attack reaches the provider
    SMSCODE_GUARD_MIN_SENDS times; every other request is a 429 and costs nothing."""
    caplog.set_level(logging.WARNING, "flask_smscode")
    app = make_app()
    answered, statuses = run_attack(app)
    sms = len(sms_server.sent)
    record_property("attack_sms_reaching_provider", sms)
    print(
        f"\nattack: {ATTACK_NUMBERS} numbers in {BLOCK_A}xxxx from {ATTACK_ADDRESSES} "
        f"addresses -> {sms} SMS reached the provider; statuses {statuses}"
    )
    assert sms == answered == get_service(app).guard.min_sends == 16
    assert statuses == {200: 16, 429: ATTACK_NUMBERS - 16}
    assert len(guard_warnings(secrets_watch, "prefix_blocked")) == 1


def test_the_demo_asks_its_arithmetic_question_before_a_send(
    store_uri, key_prefix, aliyun_config, sms_server, tmp_path
):
    """demo_app.py with DEMO_CHALLENGE: the hook refuses until /challenge is answered."""
    import re

    from demo_app import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "demo-test",
            "DEMO_CHALLENGE": True,
            "SMSCODE_STORAGE_URI": store_uri,
            "SMSCODE_KEY_PREFIX": key_prefix,
            **aliyun_config,
        },
        instance_path=tmp_path,
    )
    client = app.test_client()
    refused = client.post("/sms/send", json={"phone": PHONE}, headers={"Accept-Language": "en"})
    assert refused.status_code == 400 and refused.get_json()["error"] == "challenge_required"
    assert "/challenge" in refused.get_json()["message"]
    page = client.get("/challenge?next=/login").get_data(as_text=True)
    a, b = map(int, re.search(r"(\d) \+ (\d) = \?", page).groups())
    assert client.post("/challenge", data={"answer": "0", "next": "/login"}).status_code == 200
    page = client.get("/challenge").get_data(as_text=True)
    a, b = map(int, re.search(r"(\d) \+ (\d) = \?", page).groups())
    answered = client.post("/challenge", data={"answer": str(a + b), "next": "/login"})
    assert answered.status_code == 302 and answered.headers["Location"].endswith("/login")
    assert client.post("/sms/send", json={"phone": PHONE}).status_code == 200
    assert len(sms_server.sent) == 1
    get_service(app).store.close()


def test_the_same_attack_on_the_demo_site_costs_16_sms(
    store_uri, key_prefix, aliyun_config, sms_server, tmp_path, record_property
) -> None:
    """The attack above against demo_app.py itself (its zero-configuration settings, sending
    through the loopback provider): the conversion guard stops it after 16 SMS."""
    from demo_app import create_app

    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "demo-attack",
            "SMSCODE_STORAGE_URI": store_uri,
            "SMSCODE_KEY_PREFIX": key_prefix,
            **aliyun_config,
        },
        instance_path=tmp_path,
    )
    answered, statuses = run_attack(app)
    record_property("demo_attack_sms_reaching_provider", len(sms_server.sent))
    assert len(sms_server.sent) == answered == 16
    assert statuses == {200: 16, 429: ATTACK_NUMBERS - 16}
