"""``flask smscode delivery``: the delivery receipts (QuerySendDetails) of the messages sent
to one phone on one day.

Message texts are never shown: a verification SMS contains its code.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import click
from flask.cli import with_appcontext

from flask_smscode.aliyun.receipts import CHINA_TZ, DeliveryRecord
from flask_smscode.cli.output import _t, aliyun_client, errors, table
from flask_smscode.phones import mask_phone

_STATUS_KEYS = {
    "WAITING": "cli.delivery.waiting",
    "FAILED": "cli.delivery.failed",
    "DELIVERED": "cli.delivery.delivered",
}
_COLUMNS = ("phone", "status", "error", "template", "sent", "received", "out_id")


def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date:
    """``--date`` as YYYY-MM-DD or YYYYMMDD; none is today in China, as the provider counts."""
    if value is None:
        return datetime.now(CHINA_TZ).date()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    raise click.BadParameter(_t("cli.date.format"))


def _format_time(value: Any) -> str:
    """A receipt's time to the second, ``-`` when the provider gave none."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def _status_text(name: str) -> str:
    """A receipt status in the CLI's language; an unknown one as the provider named it."""
    key = _STATUS_KEYS.get(name)
    return _t(key) if key else name


def _record_json(r: DeliveryRecord) -> dict[str, Any]:
    """One receipt as ``--json`` prints it: the phone masked, the times in ISO 8601."""
    return {
        "phone": mask_phone(str(r.phone)),
        "status": getattr(r.status, "name", str(r.status)),
        "status_code": int(r.status),
        "error_code": r.error_code or None,
        "template_code": r.template_code,
        "send_time": r.send_time.isoformat() if isinstance(r.send_time, datetime) else None,
        "receive_time": (
            r.receive_time.isoformat() if isinstance(r.receive_time, datetime) else None
        ),
        "out_id": r.out_id,
    }


def _record_row(record: dict[str, Any], r: DeliveryRecord) -> tuple[str, ...]:
    """One receipt as a table row, in the order of ``_COLUMNS``."""
    return (
        str(record["phone"]),
        _status_text(str(record["status"])),
        r.error_code or "-",
        r.template_code or "-",
        _format_time(r.send_time),
        _format_time(r.receive_time),
        r.out_id or "-",
    )


@click.command("delivery")
@click.argument("phone")
@click.option("--biz-id", default=None, metavar="ID", help="Only the message with this BizId.")
@click.option(
    "--date",
    "send_date",
    default=None,
    callback=_parse_date,
    metavar="DATE",
    help="Send date, YYYY-MM-DD or YYYYMMDD (default: today, China time).",
)
@click.option("--page", default=1, show_default=True, type=click.IntRange(min=1))
@click.option("--page-size", default=10, show_default=True, type=click.IntRange(1, 50))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def delivery(
    phone: str, biz_id: str | None, send_date: date, page: int, page_size: int, as_json: bool
) -> None:
    """Show delivery receipts of the messages sent to PHONE on one day.

    Message texts are never shown: a verification SMS contains its code.
    """
    client = aliyun_client()
    with errors():
        report = client.query_send_details(
            phone, biz_id=biz_id, send_date=send_date, page_size=page_size, page=page
        )
    records = [_record_json(r) for r in report]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "send_date": send_date.isoformat(),
                    "page": page,
                    "page_size": page_size,
                    "total_count": report.total_count,
                    "request_id": report.request_id,
                    "records": records,
                },
                ensure_ascii=False,
            )
        )
        return
    header = tuple(_t(f"cli.delivery.{column}") for column in _COLUMNS)
    rows = [_record_row(rec, r) for rec, r in zip(records, report, strict=True)]
    if rows:
        for line in table([header, *rows]):
            click.echo(line)
    shown = _t(
        "cli.delivery.shown", shown=len(rows), total=report.total_count, date=send_date.isoformat()
    )
    if report.total_count > page * page_size:
        shown += _t("cli.delivery.more", page=page + 1)
    click.echo(shown)
