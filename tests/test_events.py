"""One Outcome per send and verify: logged, counted and signalled in one place
(events.observe), with one policy for a failing signal receiver."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from flask_smscode import (
    InvalidCode,
    SmsCodeError,
    Throttled,
    code_sent,
    delivery_reported,
    get_service,
    send_code,
    verify_code,
)
from flask_smscode.events import Outcome, observe, send_signal
from flask_smscode.metrics import SENDERS, STATS
from tests.helpers import E164, PHONE
from tests.helpers import wrong as wrong_code

AppFactory = Callable[..., Flask]


def lines(caplog: pytest.LogCaptureFixture, event: str) -> list[dict[str, Any]]:
    return [
        r.smscode  # type: ignore[attr-defined]
        for r in caplog.records
        if getattr(r, "smscode", {}).get("event") == event
    ]


def test_an_outcome_is_immutable() -> None:
    outcome = Outcome("send", "sent", phone=E164)
    with pytest.raises(AttributeError):
        outcome.outcome = "x"  # type: ignore[misc]


def test_a_send_is_one_line_one_count_one_signal(
    make_app: AppFactory, sms_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    received: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        received.append(kwargs)

    before = STATS.snapshot()["sends"].get(("login", "sent"), 0)
    with app.app_context(), code_sent.connected_to(receiver, app):
        caplog.set_level(logging.INFO, logger="flask_smscode")
        result = send_code(PHONE)
    [line] = lines(caplog, "send")
    assert line["outcome"] == "sent" and line["phone"] == "138****8000"
    assert line["sender"] == "aliyun" and line["out_id"] and line["provider_code"] == "OK"
    assert STATS.snapshot()["sends"][("login", "sent")] == before + 1
    assert received == [{"phone": E164, "purpose": "login", "delivery": result.delivery}]
    assert SENDERS.snapshot()[("aliyun", "sent")] >= 1


def test_a_refusal_carries_its_outcome_on_the_error(
    make_app: AppFactory, sms_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    caplog.set_level(logging.INFO, logger="flask_smscode")
    with app.app_context():
        send_code(PHONE)
        with pytest.raises(Throttled) as throttled:
            send_code(PHONE)
        with pytest.raises(InvalidCode) as wrong:
            verify_code(PHONE, wrong_code(sms_server.last_code(PHONE)))
    assert isinstance(throttled.value.outcome, Outcome)
    assert throttled.value.outcome.phone == E164 and throttled.value.outcome.event == "send"
    failed = wrong.value.outcome
    assert failed.signal == "verification_failed" and failed.reason == "invalid_code"
    assert failed.attempts_left == 4
    [_, refused] = lines(caplog, "send")
    assert refused["outcome"] == "throttled" and "code" not in refused
    [verify_line] = lines(caplog, "verify")
    assert verify_line["outcome"] == "invalid_code" and verify_line["attempts_left"] == 4


def test_a_refusal_before_the_phone_is_read_still_logs_once(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    caplog.set_level(logging.INFO, logger="flask_smscode")
    with app.app_context(), pytest.raises(SmsCodeError):
        get_service().send(12345, "login")  # not a string: invalid_request
    [line] = lines(caplog, "send")
    assert line["outcome"] == "invalid_request" and line["phone"] == "-"


def test_one_policy_for_every_failing_receiver(
    make_app: AppFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver's exception is logged with its type and stack, never its text, and never
    reaches the caller: the same for a code signal and for a delivery report."""
    app = make_app()

    def broken(sender: Any, **kwargs: Any) -> None:
        raise ValueError(f"leaks {kwargs['phone']}")

    caplog.set_level(logging.INFO, logger="flask_smscode")
    with app.app_context(), delivery_reported.connected_to(broken, app):
        send_signal(delivery_reported, app, phone=E164, state="delivered")
        observe(Outcome("send", "sent", phone=E164, purpose="login", signal="code_sent"))
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "ValueError" in errors[0] and E164 not in errors[0]
    assert "message withheld" in errors[0]


def test_outside_an_app_context_no_signal_is_sent() -> None:
    calls: list[Any] = []
    with code_sent.connected_to(lambda sender, **kw: calls.append(kw)):
        observe(Outcome("send", "sent", phone=E164, purpose="login", signal="code_sent"))
    assert calls == []
