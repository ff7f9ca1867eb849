"""The ``flask smscode`` command group (registered through the ``flask.commands`` entry point).

For the support desk and operators: issue a code as the endpoint would (``send``), see why
a phone is stuck (``status``), unlock it (``reset``), send a notification template to many
numbers (``notify``) and read delivery receipts (``delivery``).

Output never holds a template parameter or a message text (both may carry a code or personal
data); the one exception is ``send`` with the console sender, where no SMS goes out and the
operator is the only way the code reaches the user.

One module per command family; this one only assembles the group:

- ``output``: what they share (app, service, client, ``Error:`` lines, catalogue, tables)
- ``codes``: ``send``, ``status``, ``reset``
- ``guard``: ``guard status``, ``guard unblock``
- ``notify``: ``notify`` and its file readers
- ``delivery``: ``delivery``
- ``doctor``: ``doctor`` and its checks
- ``stats``: ``stats`` (the store's hourly counters)
"""

from __future__ import annotations

import click

# Modules, not their commands: a command named like its module would hide the module.
from flask_smscode.cli import codes, delivery, doctor, guard, notify
from flask_smscode.cli import receipts as receipts_cli
from flask_smscode.cli import stats as stats_cli
from flask_smscode.cli import suppress as suppress_cli


@click.group("smscode")
@click.option(
    "--lang",
    default=None,
    metavar="LANG",
    help="Language of the messages (en, zh, or any in the catalogue); default from "
    "LANGUAGE/LC_ALL/LC_MESSAGES/LANG, else SMSCODE_DEFAULT_LANGUAGE.",
)
@click.pass_context
def smscode(ctx: click.Context, lang: str | None) -> None:
    """Operate flask-smscode: issue, inspect and reset codes; notify; read receipts."""
    ctx.meta["smscode.lang"] = lang


smscode.add_command(codes.send)
smscode.add_command(codes.status)
smscode.add_command(codes.reset)
smscode.add_command(guard.guard)
smscode.add_command(notify.notify)
smscode.add_command(delivery.delivery)
smscode.add_command(doctor.doctor)
smscode.add_command(receipts_cli.receipts)  # receipts consume: the message queue (MNS)
smscode.add_command(suppress_cli.suppress)  # suppress list|add|remove
smscode.add_command(stats_cli.stats)  # stats: the store's hourly counters (core/stats.py)
