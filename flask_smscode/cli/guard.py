"""``flask smscode guard status`` and ``guard unblock``: the SMS-pumping guard's budgets and
number-prefix blocks, seen and lifted by an operator."""

from __future__ import annotations

import json
from typing import Any

import click
from flask.cli import with_appcontext

from flask_smscode.cli.output import _t, app_service, errors, limits_used
from flask_smscode.core.service import SmsCodeService


@click.group("guard")
def guard() -> None:
    """Inspect and clear the SMS-pumping guard: budgets and number-prefix blocks."""


def _guard_data(service: SmsCodeService) -> dict[str, Any]:
    """The global budget's use and every counted prefix, blocked ones first."""
    counts, prefixes = service.guard_status()
    settings = service.guard
    return {
        # "shadow": the blocks below are what the guard would refuse (SMSCODE_GUARD_MODE)
        "mode": "shadow" if settings.shadow else "enforce",
        "global": [
            {"limit": limit.text, "used": counts.get(limit.text, 0)}
            for limit in settings.global_limits
        ],
        "prefixes": [
            {
                "prefix": p.prefix,
                "sends": p.sends,
                "verifies": p.verifies,
                "conversion": round(p.verifies / p.sends, 3) if p.sends else None,
                "blocked_for": p.blocked_for,
                "counted": [{"limit": text, "used": used} for text, used in p.counted.items()],
            }
            for p in sorted(prefixes, key=lambda p: (-p.blocked_for, -p.sends, p.prefix))
        ],
    }


def _prefix_line(p: dict[str, Any]) -> str:
    """One row under ``cli.guard.header``: a prefix's counts, conversion and block."""
    return _t(
        "cli.guard.row",
        prefix=p["prefix"],
        sends=f"{p['sends']:g}",
        verifies=f"{p['verifies']:g}",
        conversion="-" if p["conversion"] is None else f"{p['conversion']:.0%}",
        blocked=_t("cli.guard.blocked", seconds=p["blocked_for"])
        if p["blocked_for"]
        else _t("cli.guard.not_blocked"),
        counted=limits_used(p["counted"]) or "-",
    ).rstrip()


@guard.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def guard_status(as_json: bool) -> None:
    """Show the global send budget and every number prefix the guard counts (sends,
    verifies and conversion over the sliding window, blocks and their time left)."""
    service = app_service()
    with errors():
        data = _guard_data(service)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    if data["global"]:
        click.echo(_t("cli.guard.global", sends=limits_used(data["global"])))
    if not data["prefixes"]:
        click.echo(_t("cli.guard.none"))
        return
    click.echo(_t("cli.guard.header"))
    for p in data["prefixes"]:
        click.echo(_prefix_line(p))


@guard.command("unblock")
@click.argument("prefix")
@with_appcontext
def guard_unblock(prefix: str) -> None:
    """Lift the block of PREFIX (as `guard status` shows it, e.g. +861380013) and forget
    its conversion counts, so it is judged afresh."""
    service = app_service()
    prefix = prefix.strip()
    with errors():
        found = service.guard_unblock(prefix)
    click.echo(_t("cli.guard.unblocked" if found else "cli.guard.not_found", prefix=prefix))
