"""``flask smscode send``, ``status`` and ``reset``: one phone's verification code, as the
support desk sees it.

``send`` prints the code only with the console sender, where no SMS goes out and the
operator is the only way the code reaches the user.
"""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import with_appcontext

from flask_smscode.cli.output import _t, app_service, errors, limits_used
from flask_smscode.core.service import SmsCodeService
from flask_smscode.phones import mask_phone
from flask_smscode.senders import ConsoleSender, Sender, SendReceipt


class _EchoingSender:
    """Wraps the console sender for one ``send``: it delegates, and remembers the code per
    phone so the command can show it (the console sender itself never reveals it outside
    debug mode, and no SMS goes out, so the operator must pass it on)."""

    def __init__(self, inner: Sender) -> None:
        self.inner = inner
        self.codes: dict[str, str] = {}

    def send(self, phone: str, code: str, purpose: str, *, out_id: str) -> SendReceipt:
        receipt = self.inner.send(phone, code, purpose, out_id=out_id)
        self.codes[phone] = code
        return receipt


@click.command("send")
@click.argument("phone")
@click.option(
    "--purpose",
    default="login",
    show_default=True,
    help="What the code is for (one of SMSCODE_PURPOSES).",
)
@with_appcontext
def send(phone: str, purpose: str) -> None:
    """Send a code to PHONE, as POST /sms/send would.

    Every per-phone throttle applies. The code is printed only when the app uses the
    console sender, which sends no SMS.
    """
    service = app_service()
    echo: _EchoingSender | None = None
    with errors():
        e164 = service.normalize(phone)
        original = service.sender
        if isinstance(original, ConsoleSender):
            echo = _EchoingSender(original)
            service.sender = echo
        try:
            result = service.send(phone, purpose)
        finally:
            if echo is not None:
                service.sender = original
    click.echo(
        _t(
            "cli.sent",
            phone=result.masked_phone,
            purpose=result.purpose,
            delivery=result.delivery,
            expires_in=result.expires_in,
            resend_in=result.resend_in,
        )
    )
    fixed = service.settings.test_numbers.get(e164)
    if fixed is not None:
        click.echo(_t("cli.test_number"))
    if echo is not None:
        code = echo.codes.get(e164, fixed)
        if code is not None:
            click.echo(_t("cli.code", code=code))
    if result.delivery == "unconfirmed":
        click.echo(_t("cli.unconfirmed"), err=True)


def _status_data(service: SmsCodeService, phone: str, purpose: str) -> dict[str, Any]:
    """The phone's state for ``status``, as its ``--json`` prints it."""
    e164 = service.normalize(phone)
    snapshot = service.status(e164, purpose)
    settings = service.settings
    return {
        "phone": e164,
        "purpose": purpose,
        "code_live": snapshot.code_ttl > 0,
        "code_ttl": snapshot.code_ttl,
        "out_id": snapshot.out_id,
        "sender": snapshot.sender,  # which sender of SMSCODE_SENDER carried the live code
        "attempts_left": max(0, settings.max_attempts - snapshot.failures),
        "max_attempts": settings.max_attempts,
        "failures_ttl": snapshot.failures_ttl,
        "cooldown": snapshot.cooldown,
        "sends": [
            {
                "limit": limit.text,
                "used": snapshot.sends.get(limit.text, 0),
                "amount": limit.amount,
                "seconds": limit.seconds,
            }
            for limit in settings.phone_limits
        ],
    }


def _add_delivery(service: SmsCodeService, data: dict[str, Any]) -> None:
    """With the report receiver on, the last code's delivery as the provider reported it."""
    if service.deliveries.enabled:
        data["delivery"] = service.deliveries.of(data["phone"], data["out_id"]).as_json()


def _status_lines(data: dict[str, Any]) -> list[str]:
    """``status`` without ``--json``: one line per fact of :func:`_status_data`."""
    lines = [
        _t("cli.status.phone", masked=mask_phone(data["phone"]), phone=data["phone"]),
        _t("cli.status.purpose", purpose=data["purpose"]),
        _t("cli.status.code_live", seconds=data["code_ttl"])
        if data["code_live"]
        else _t("cli.status.code_dead"),
        _t("cli.status.out_id", out_id=data["out_id"] or _t("cli.status.none")),
    ]
    if data["sender"]:
        lines.append(_t("cli.status.sender", sender=data["sender"]))
    attempts = _t("cli.status.attempts", left=data["attempts_left"], max=data["max_attempts"])
    if data["failures_ttl"]:
        attempts += _t("cli.status.window", seconds=data["failures_ttl"])
    lines.append(attempts)
    lines.append(
        _t("cli.status.cooldown", seconds=data["cooldown"])
        if data["cooldown"]
        else _t("cli.status.no_cooldown")
    )
    sends = limits_used(data["sends"])
    lines.append(_t("cli.status.sends", sends=sends or _t("cli.status.no_phone_limits")))
    if "delivery" in data:
        delivery = data["delivery"]
        lines.append(
            _t(
                f"cli.status.delivery.{delivery['state']}",
                err_code=delivery["err_code"] or "-",
                out_id=delivery["out_id"] or "-",
            )
        )
    return lines


@click.command("status")
@click.argument("phone")
@click.option(
    "--purpose",
    default="login",
    show_default=True,
    help="Which purpose's code and failures to show.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def status(phone: str, purpose: str, as_json: bool) -> None:
    """Show PHONE's live code, attempts left, cooldown and send caps."""
    service = app_service()
    with errors():
        data = _status_data(service, phone, purpose)
        _add_delivery(service, data)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo("\n".join(_status_lines(data)))


@click.command("reset")
@click.argument("phone")
@click.option(
    "--purpose",
    default=None,
    help="Only this purpose's code and failures (default: every purpose).",
)
@with_appcontext
def reset(phone: str, purpose: str | None) -> None:
    """Unlock PHONE: clear its codes, failures and throttles."""
    service = app_service()
    with errors():
        e164 = service.normalize(phone)
        removed = service.reset(e164, purpose)
    scope = _t("cli.reset.scope", purpose=purpose) if purpose else ""
    click.echo(_t("cli.reset", phone=mask_phone(e164), scope=scope, removed=removed))
