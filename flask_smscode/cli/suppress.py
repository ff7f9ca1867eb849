"""``flask smscode suppress list|add|remove``: the suppression list (numbers that
unsubscribed, by a reply such as 退订 / TD / STOP, or an operator). Notifications skip them;
verification codes too only with SMSCODE_SUPPRESS_CODES. Phones are shown masked unless
``--full`` is given (the operator's own terminal, e.g. to remove one)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import click
from flask.cli import with_appcontext

from flask_smscode.cli.output import _t, app_service, errors, table
from flask_smscode.phones import mask_phone


@click.group("suppress")
def suppress() -> None:
    """List, add or remove suppressed (unsubscribed) numbers."""


def _e164(phone: str) -> str:
    service = app_service()
    with errors():
        return service.normalize(phone)


@suppress.command("list")
@click.option("--full", is_flag=True, help="Show whole numbers (default: masked).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def list_(full: bool, as_json: bool) -> None:
    """Show the suppression list."""
    service = app_service()
    with errors():
        entries = service.suppression.entries()
    rows = [
        {
            "phone": e.phone if full else mask_phone(e.phone),
            "since": datetime.fromtimestamp(e.since_ms / 1000, timezone.utc).isoformat(
                timespec="seconds"
            ),
            "source": e.source,
        }
        for e in entries
    ]
    if as_json:
        click.echo(json.dumps({"count": len(rows), "numbers": rows}, ensure_ascii=False))
        return
    if rows:
        header = (_t("cli.suppress.phone"), _t("cli.suppress.since"), _t("cli.suppress.source"))
        for line in table([header, *[(r["phone"], r["since"], r["source"]) for r in rows]]):
            click.echo(line)
    click.echo(_t("cli.suppress.count", count=len(rows)))


@suppress.command("add")
@click.argument("phone")
@with_appcontext
def add(phone: str) -> None:
    """Put PHONE on the suppression list."""
    e164 = _e164(phone)
    with errors():
        added = app_service().suppression.add(e164, "cli")
    key = "cli.suppress.added" if added else "cli.suppress.already"
    click.echo(_t(key, phone=mask_phone(e164)))


@suppress.command("remove")
@click.argument("phone")
@with_appcontext
def remove(phone: str) -> None:
    """Take PHONE off the suppression list (exits 1 when it was not on it)."""
    e164 = _e164(phone)
    with errors():
        removed = app_service().suppression.remove(e164)
    if not removed:
        click.echo(_t("cli.suppress.absent", phone=mask_phone(e164)))
        click.get_current_context().exit(1)
    click.echo(_t("cli.suppress.removed", phone=mask_phone(e164)))
