"""``flask smscode stats``: sends, conversion, refusals, guard blocks and delivery latency
for the last hour and the last day, from the counters the store keeps (no Prometheus
needed). The numbers come from :func:`flask_smscode.core.stats.operator_stats`; this
module only formats them."""

from __future__ import annotations

import json

import click
from flask.cli import with_appcontext

from flask_smscode.cli.output import _t, app_service, errors
from flask_smscode.core.stats import Window, operator_stats
from flask_smscode.stores.stats import KEEP_HOURS


def _counts(items: dict[str, int]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in sorted(items.items())) or "-"


def _lines(window: Window) -> list[str]:
    since = window.since.strftime("%Y-%m-%d %H:%M")
    conversion = "-" if window.conversion is None else f"{window.conversion:.1%}"
    lines = [
        _t("cli.stats.window", hours=window.hours, since=since),
        _t("cli.stats.sends", sends=window.sends, verified=window.verified, conversion=conversion),
        _t("cli.stats.refusals", refusals=_counts(window.refusals)),
        _t("cli.stats.guard", blocks=window.guard_blocks),
        _t("cli.stats.failures", failures=_counts(window.verify_failures)),
    ]
    if not window.latency:
        return [*lines, _t("cli.stats.no_delivery")]
    lines.append(_t("cli.stats.delivery"))
    for item in window.latency:
        lines.append(
            _t(
                "cli.stats.delivery_row",
                carrier=item.carrier,
                vendor=item.vendor,
                count=item.count,
                p50=f"{item.p50:.1f}",
                p95=(">" if item.over else "") + f"{item.p95:.1f}",
            ).rstrip()
        )
    return lines


@click.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.option(
    "--hours",
    type=click.IntRange(1, KEEP_HOURS),
    default=24,
    show_default=True,
    help="The longer window, in hours (the store keeps 14 days); the shorter is 1 hour.",
)
@with_appcontext
def stats(as_json: bool, hours: int) -> None:
    """Sends, verified, conversion, refusals by reason, guard blocks and delivery p50/p95
    per carrier and vendor, for the last hour and the last HOURS hours (UTC hours, the
    current one included), from the store's hourly counters."""
    service = app_service()
    with errors():
        windows = operator_stats(service.store, sorted({1, hours}))
    if as_json:
        click.echo(json.dumps({"windows": [w.as_json() for w in windows]}, ensure_ascii=False))
        return
    for i, window in enumerate(windows):
        if i:
            click.echo("")
        for line in _lines(window):
            click.echo(line)
