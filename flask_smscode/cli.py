"""The ``flask smscode`` command group (registered through the ``flask.commands`` entry point)."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from .errors import SmsCodeError
from .service import get_service, init_app


@click.group("smscode")
def smscode() -> None:
    """Operate flask-smscode: issue, inspect and reset codes."""


def _service():
    from flask import current_app

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    return get_service(app) if "smscode" in app.extensions else init_app(app)


@smscode.command("reset")
@click.argument("phone")
@click.option("--purpose", default=None, help="Only this purpose's code and failures.")
@with_appcontext
def reset(phone: str, purpose: str | None) -> None:
    """Clear PHONE's codes, failures and throttles (support desk unlock)."""
    try:
        removed = _service().reset(phone, purpose)
    except SmsCodeError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"Reset {removed} key(s).")
