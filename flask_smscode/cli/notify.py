"""``flask smscode notify``: a notification template to many numbers, from ``--phones`` or
a file (a list of numbers, or a CSV of people whose columns fill the template).

Output never holds a template parameter or a full invalid entry: both may carry personal
data. Progress goes to stderr, so stdout holds only the summary (for scripts and logs).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from flask_smscode.aliyun.batch import BatchEntry
from flask_smscode.aliyun.errors import REQUEST_FAILED, AliyunSmsError
from flask_smscode.aliyun.sendsms import SendSmsResponse
from flask_smscode.cli.output import _t, aliyun_client, app_service, errors

PHONE_COLUMNS = ("phone", "mobile", "phone_number", "手机号", "手机")
# Optional per-row columns of `notify --file` without --params (every other one is a variable).
SIGN_NAME_COLUMN, EXTEND_CODE_COLUMN = "sign_name", "sms_up_extend_code"
MAX_INVALID_LISTED = 20
_PHONE_SEPARATORS = re.compile(r"[\s,;，；、]+")  # noqa: RUF001 - full-width commas are typed
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

# One provider call for the numbers (or rows) that are ready, given the progress callback.
_Send = Callable[[Callable[[SendSmsResponse], None]], list[SendSmsResponse]]


# -- the input ---------------------------------------------------------------------------------
def _parse_params(value: str) -> dict[str, Any]:
    """``--params``: a JSON object, else a usage error with an example."""
    try:
        params = json.loads(value)
    except ValueError:
        raise click.BadParameter(
            _t("cli.params.not_json", example='\'{"name":"Li"}\''), param_hint="--params"
        ) from None
    if not isinstance(params, dict):
        raise click.BadParameter(_t("cli.params.not_object"), param_hint="--params")
    return params


def _read_text(path: Path) -> str:
    """The file as UTF-8 text (a BOM, as Excel writes it, dropped); refusals name it."""
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise click.BadParameter(
            _t("cli.file.not_utf8", name=path.name), param_hint="--file"
        ) from None
    except OSError as exc:
        raise click.BadParameter(
            _t("cli.file.unreadable", name=path.name, reason=exc.strerror), param_hint="--file"
        ) from None


def _read_phone_file(path: Path) -> list[tuple[str, int]]:
    """``(entry, line number)`` pairs from a CSV or a one-number-per-line text file."""
    text = _read_text(path)
    lines = text.splitlines()
    data = [line for line in lines if line.strip() and not line.lstrip().startswith("#")]
    is_csv = path.suffix.lower() in (".csv", ".tsv") or any(
        "," in line or "\t" in line for line in data[:5]
    )
    if not is_csv:
        entries = []
        for number, line in enumerate(lines, 1):
            entry = line.split("#", 1)[0].strip()
            if entry:
                entries.append((entry, number))
        return entries
    delimiter = "\t" if data and "\t" in data[0] and "," not in data[0] else ","
    rows = [
        (number, row)
        for number, row in enumerate(
            csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1
        )
        if any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")
    ]
    column = 0
    if rows:
        header = [cell.strip().lower() for cell in rows[0][1]]
        named = [i for i, cell in enumerate(header) if cell in PHONE_COLUMNS]
        if named:
            column, rows = named[0], rows[1:]
        elif header and not any(ch.isdigit() for ch in header[0]):
            rows = rows[1:]  # a header row with other names: numbers are in the first column
    return [
        (row[column].strip(), number)
        for number, row in rows
        if len(row) > column and row[column].strip()
    ]


def _read_people_file(path: Path) -> tuple[str, list[tuple[int, dict[str, str]]]]:
    """The phone column's name and ``(line number, {column: value})`` per data row of a CSV
    (or TSV) whose header names a phone column; refused (usage error) otherwise."""
    text = _read_text(path)
    first = next(
        (line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")),
        "",
    )
    delimiter = "\t" if "\t" in first and "," not in first else ","
    rows = [
        (number, [cell.strip() for cell in row])
        for number, row in enumerate(
            csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), 1
        )
        if any(cell.strip() for cell in row) and not row[0].lstrip().startswith("#")
    ]
    header = rows[0][1] if rows else []
    phone_column = next((c for c in header if c.lower() in PHONE_COLUMNS), None)
    if phone_column is None:
        raise click.UsageError(
            _t("cli.notify.no_phone_column", name=path.name, columns=", ".join(PHONE_COLUMNS))
        )
    people = [
        (number, dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=False)))
        for number, cells in rows[1:]
    ]
    return phone_column, people


def _phone_entries(
    phones: str | None, file_path: Path | None
) -> tuple[list[tuple[str, int]], str, str]:
    """The numbers to notify as ``(entry, line or position)`` pairs, the source's name and
    the catalogue key that says where in it an entry was."""
    if file_path is not None:
        return _read_phone_file(file_path), file_path.name, "cli.notify.line"
    entries = [
        (entry, i)
        for i, entry in enumerate((e for e in _PHONE_SEPARATORS.split(phones or "") if e), 1)
    ]
    return entries, "--phones", "cli.notify.entry"


# -- the output --------------------------------------------------------------------------------
def _mask_entry(raw: str) -> str:
    """An invalid entry may not parse as a phone: show only its last two characters."""
    tail = _CONTROL.sub("", str(raw).strip())[-2:]
    return "***" + tail


def _listed(heading: str, items: list[str], count: int) -> list[str]:
    """``heading`` over the first MAX_INVALID_LISTED of ``count`` items, indented, and how
    many more there are; nothing when ``count`` is 0."""
    if not count:
        return []
    lines = [heading] + ["  " + item for item in items[:MAX_INVALID_LISTED]]
    if count > MAX_INVALID_LISTED:
        lines.append("  " + _t("cli.notify.invalid_more", count=count - MAX_INVALID_LISTED))
    return lines


def _invalid_lines(invalid: list[str], entries: list[tuple[str, int]], place_key: str) -> list[str]:
    """The invalid entries, masked, each with where it first appeared in the source."""
    where: dict[str, int] = {}
    for entry, place in entries:
        where.setdefault(entry, place)
    items = [
        _t(
            "cli.notify.invalid_item",
            entry=_mask_entry(entry),
            where=_t(place_key, number=where[entry]) if entry in where else "?",
        )
        for entry in invalid[:MAX_INVALID_LISTED]
    ]
    return _listed(_t("cli.notify.invalid", count=len(invalid)), items, len(invalid))


def _summary(responses: list[SendSmsResponse], total: int) -> tuple[list[str], bool]:
    """Summary lines (counts, codes, request ids, BizIds only) and whether all went out."""
    ok = [r for r in responses if r.ok]
    failed = [r for r in responses if not r.ok]
    sent = sum(len(r.phone_numbers) for r in ok)
    lines = [_t("cli.notify.sent", count=sent, requests=len(ok))]
    lines += [
        "  "
        + _t(
            "cli.notify.batch",
            count=len(r.phone_numbers),
            biz_id=r.biz_id or "-",
            request_id=r.request_id or "-",
            out_id=r.out_id or "-",
        )
        for r in ok
    ]
    for r in failed:
        error = getattr(r, "error", None)  # the AliyunSmsError of that call, when kept
        request_failed = (
            r.code == "REQUEST_FAILED" or getattr(error, "code", None) == REQUEST_FAILED
        )
        note = _t("cli.notify.maybe_delivered") if getattr(error, "delivery_unknown", False) else ""
        lines.append(
            _t(
                "cli.notify.failed" if request_failed else "cli.notify.rejected",
                count=len(r.phone_numbers),
                code=r.code,
                request_id=r.request_id or "-",
                note=note,
            )
        )
    attempted = sum(len(r.phone_numbers) for r in responses)
    if attempted < total:
        lines.append(_t("cli.notify.not_sent", count=total - attempted))
    return lines, not failed and attempted >= total


# -- sending -----------------------------------------------------------------------------------
def _send_with_progress(total: int, send: _Send) -> list[SendSmsResponse]:
    """The answers of every call ``send`` made, with a progress bar on stderr; refused
    before any call (nothing went out) is an ``Error:``."""
    with click.progressbar(length=total, label=_t("cli.notify.progress"), file=sys.stderr) as bar:
        try:
            return send(lambda response: bar.update(len(response.phone_numbers)))
        except AliyunSmsError as exc:
            responses: list[SendSmsResponse] = list(getattr(exc, "responses", None) or [])
            if not responses:  # refused before any call: nothing went out
                raise click.ClickException(str(exc)) from None
            return responses


def _send_and_report(
    total: int, send: _Send, *, duplicates: int, problems: list[str], source: str
) -> None:
    """Send the ``total`` numbers (rows) that are ready (none: the problems, then an
    ``Error:``) and print the summary and the problems; exit 1 when there was any problem
    or a rejected call, so scripts notice."""
    if not total:
        click.echo("\n".join(problems))
        raise click.ClickException(_t("cli.notify.no_valid", source=source))
    responses = _send_with_progress(total, send)
    # Numbers on the suppression list (unsubscribed) were skipped, not failed.
    suppressed = int(getattr(responses, "suppressed", 0))
    lines, all_sent = _summary(responses, total - suppressed)
    if duplicates > 0:
        lines.append(_t("cli.notify.duplicates", count=duplicates))
    if suppressed > 0:
        lines.append(_t("cli.notify.suppressed", count=suppressed))
    click.echo("\n".join(lines + problems))
    if not all_sent or problems:
        click.get_current_context().exit(1)


@click.command("notify")
@click.option(
    "--template",
    "template_code",
    required=True,
    metavar="CODE",
    help="Template code approved in the SMS console (SMS_...).",
)
@click.option(
    "--params",
    "params_text",
    default=None,
    metavar="JSON",
    help="Template variables as a JSON object, the same for every number; never "
    "printed. Without it, --file must be a CSV with a header: a phone column "
    "and one column per template variable (optional sign_name and "
    "sms_up_extend_code columns), sent per row with SendBatchSms.",
)
@click.option(
    "--phones",
    default=None,
    metavar="LIST",
    help="Numbers separated by commas, spaces or newlines.",
)
@click.option(
    "--file",
    "file_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CSV (column phone/mobile/phone_number/手机号/手机, else the first) or a "
    "text file with one number per line (# comments); UTF-8. Without --params: "
    "a CSV whose other columns fill the template, row by row.",
)
@click.option(
    "--sign-name",
    default=None,
    metavar="NAME",
    help="Sign name (签名); default SMSCODE_ALIYUN_SIGN_NAME.",
)
@click.option(
    "--out-id",
    default=None,
    metavar="ID",
    help="OutId for every SendSms call (default: one per call).",
)
@click.option(
    "--sms-up-extend-code",
    default=None,
    metavar="DIGITS",
    help="Uplink extension code (SmsUpExtendCode, 1-7 digits) for every number.",
)
@with_appcontext
def notify(
    template_code: str,
    params_text: str | None,
    phones: str | None,
    file_path: Path | None,
    sign_name: str | None,
    out_id: str | None,
    sms_up_extend_code: str | None,
) -> None:
    """Send a notification template to many numbers.

    With --params, numbers go out in SendSms calls of at most 1000. Without it, --file is a
    CSV of people: each row's columns fill the template, in SendBatchSms calls of at most
    100. Invalid numbers (rows) are skipped and counted; exits 1 when any was invalid or
    any call was rejected, so scripts notice.
    """
    params = _parse_params(params_text) if params_text is not None else None
    if (phones is None) == (file_path is None):
        raise click.UsageError(_t("cli.notify.one_source"))
    if params is None:
        if file_path is None:
            raise click.UsageError(_t("cli.notify.params_required"))
        _notify_people(file_path, template_code, sign_name, out_id, sms_up_extend_code)
        return
    entries, source, place_key = _phone_entries(phones, file_path)
    if not entries:
        raise click.UsageError(_t("cli.notify.no_phones", source=source))
    client = aliyun_client()
    if not (sign_name or client.sign_name):
        raise click.ClickException(_t("cli.notify.no_sign_name"))
    client.suppression = app_service().suppression.suppressed  # unsubscribed: skipped
    raw = [entry for entry, _ in entries]
    valid, invalid = client.normalize_phones(raw)
    _send_and_report(
        len(valid),
        lambda on_batch: client.send_message(
            valid,
            params,
            template_code,
            skip_invalid=True,
            on_batch=on_batch,
            out_id=out_id,
            sign_name=sign_name,
            sms_up_extend_code=sms_up_extend_code,
        ),
        duplicates=len(raw) - len(valid) - len(invalid),
        problems=_invalid_lines(invalid, entries, place_key),
        source=source,
    )


# -- a CSV of people: one SendBatchSms entry per row -------------------------------------------
def _batch_entries(
    people: list[tuple[int, dict[str, str]]], phone_column: str, extend_code: str | None
) -> tuple[list[BatchEntry], list[int], list[str]]:
    """One entry per row, its other columns the template's values, and the row's line
    number; a row with an empty value is a problem line instead (it would go out as an
    empty word, or fail the whole call)."""
    special = {phone_column.lower(), SIGN_NAME_COLUMN, EXTEND_CODE_COLUMN}
    entries: list[BatchEntry] = []
    lines: list[int] = []
    bad: list[str] = []
    for number, row in people:
        where = _t("cli.notify.line", number=number)
        values = {k: v for k, v in row.items() if k and k.lower() not in special}
        empty = [k for k, v in values.items() if not v]
        if empty:
            bad.append(_t("cli.notify.bad.empty", where=where, columns=", ".join(empty)))
            continue
        lowered = {k.lower(): v for k, v in row.items()}
        entries.append(
            BatchEntry(
                row[phone_column],
                values,
                lowered.get(SIGN_NAME_COLUMN) or None,
                lowered.get(EXTEND_CODE_COLUMN) or extend_code,
            )
        )
        lines.append(number)
    return entries, lines, bad


def _notify_people(
    path: Path,
    template_code: str,
    sign_name: str | None,
    out_id: str | None,
    extend_code: str | None,
) -> None:
    """``notify --file people.csv`` without ``--params``: one SendBatchSms entry per row."""
    phone_column, people = _read_people_file(path)
    if not people:
        raise click.UsageError(_t("cli.notify.no_phones", source=path.name))
    client = aliyun_client()
    client.suppression = app_service().suppression.suppressed  # unsubscribed: skipped
    entries, lines, bad = _batch_entries(people, phone_column, extend_code)
    with errors():
        plan = client.prepare_batch(entries, sign_name=sign_name)
    for problem in plan.problems:
        bad.append(
            _t(
                f"cli.notify.bad.{problem.field}",
                where=_t("cli.notify.line", number=lines[problem.index]),
                entry=problem.shown or "-",
            )
        )
    ready = [entries[r.index] for r in plan.ready]
    _send_and_report(
        len(ready),
        lambda on_batch: client.send_batch(
            ready, template_code, sign_name=sign_name, out_id=out_id, on_batch=on_batch
        ),
        duplicates=plan.duplicates,
        problems=_listed(_t("cli.notify.bad_rows", count=len(bad)), bad, len(bad)),
        source=path.name,
    )
