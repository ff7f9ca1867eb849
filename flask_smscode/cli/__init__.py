"""The ``flask smscode`` command group (registered through the ``flask.commands`` entry point).

For the support desk and operators: issue a code as the endpoint would (``send``), see why
a phone is stuck (``status``), unlock it (``reset``), send a notification template to many
numbers (``notify``) and read delivery receipts (``delivery``).

Output never holds a template parameter or a message text (both may carry a code or personal
data); the one exception is ``send`` with the console sender, where no SMS goes out and the
operator is the only way the code reaches the user.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click
from flask import has_app_context
from flask.cli import with_appcontext

from flask_smscode.aliyun.batch import BatchEntry
from flask_smscode.aliyun.client import AliyunSms
from flask_smscode.aliyun.errors import REQUEST_FAILED, AliyunSmsError
from flask_smscode.aliyun.receipts import CHINA_TZ
from flask_smscode.aliyun.sendsms import SendSmsResponse
from flask_smscode.core.service import SmsCodeService
from flask_smscode.core.settings import catalogue_from_config
from flask_smscode.errors import ConfigurationError, SmsCodeError
from flask_smscode.extension import EXTENSION_KEY, get_service, init_app
from flask_smscode.messages import Catalogue, default_catalogue, environment_language
from flask_smscode.phones import mask_phone
from flask_smscode.senders import ConsoleSender, Sender, SendReceipt
from flask_smscode.signals import current_app_object

PHONE_COLUMNS = ("phone", "mobile", "phone_number", "手机号", "手机")
# Optional per-row columns of `notify --file` without --params (every other one is a variable).
SIGN_NAME_COLUMN, EXTEND_CODE_COLUMN = "sign_name", "sms_up_extend_code"
MAX_INVALID_LISTED = 20
_PHONE_SEPARATORS = re.compile(r"[\s,;，；、]+")  # noqa: RUF001 - full-width commas are typed
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


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


# -- helpers ---------------------------------------------------------------------------------
@contextmanager
def _errors() -> Iterator[None]:
    """Refusals become ``Error: <machine code>: <message>`` and exit 1, never a traceback."""
    failure: click.ClickException | None = None
    try:
        yield
    except SmsCodeError as exc:
        catalogue, language = _messages()
        text = f"{exc.code}: {exc.render(language, catalogue)}"
        if exc.retry_after:
            text = _t("cli.error_retry", message=text, retry_after=exc.retry_after)
        failure = click.ClickException(text)
    except ConfigurationError as exc:
        failure = click.ClickException(str(exc))
    except AliyunSmsError as exc:  # its str() holds codes and the request id, never secrets
        failure = click.ClickException(str(exc))
    if failure is not None:
        raise failure


def _app() -> Any:
    return current_app_object()


def _messages() -> tuple[Catalogue, str]:
    """The app's catalogue and the language chosen by --lang, the environment or the app.

    Option callbacks (``--date``) run before ``with_appcontext`` pushes the app: they get
    the built-in catalogue, in the same language.
    """
    app = _app() if has_app_context() else None
    service = app.extensions.get(EXTENSION_KEY) if app is not None else None
    try:
        catalogue = (
            service.messages
            if service is not None
            else catalogue_from_config(app.config)
            if app is not None
            else default_catalogue()
        )
    except ConfigurationError:  # reported by the command itself when it builds the service
        catalogue = default_catalogue()
    ctx = click.get_current_context(silent=True)
    chosen = ctx.find_root().meta.get("smscode.lang") if ctx is not None else None
    language = catalogue.match(chosen) if chosen else None
    if chosen and language is None:
        raise click.BadParameter(
            catalogue.text(
                "cli.lang.unknown",
                environment_language(catalogue),
                {"language": chosen, "available": ", ".join(catalogue.languages)},
            ),
            param_hint="--lang",
        )
    return catalogue, language or environment_language(catalogue)


def _t(key: str, **params: Any) -> str:
    """One CLI sentence from the catalogue, in the CLI's language."""
    catalogue, language = _messages()
    return catalogue.text(key, language, params)


def _service() -> SmsCodeService:
    """The app's service, built here when the app did not register the blueprint."""
    app = _app()
    with _errors():
        service: SmsCodeService = (
            get_service(app) if EXTENSION_KEY in app.extensions else init_app(app)
        )
        return service


def _client() -> AliyunSms:
    with _errors():
        return AliyunSms.from_config(_app().config)


def _mask_entry(raw: str) -> str:
    """An invalid entry may not parse as a phone: show only its last two characters."""
    tail = _CONTROL.sub("", str(raw).strip())[-2:]
    return "***" + tail


def _format_time(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


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


# -- send / status / reset ------------------------------------------------------------------
@smscode.command("send")
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
    service = _service()
    echo: _EchoingSender | None = None
    with _errors():
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


@smscode.command("status")
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
    service = _service()
    with _errors():
        data = _status_data(service, phone, purpose)
        _add_delivery(service, data)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
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
    sends = ", ".join(
        _t("cli.status.send_item", used=item["used"], limit=item["limit"]) for item in data["sends"]
    )
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
    click.echo("\n".join(lines))


def _add_delivery(service: SmsCodeService, data: dict[str, Any]) -> None:
    """With the report receiver on, the last code's delivery as the provider reported it."""
    if service.deliveries.enabled:
        data["delivery"] = service.deliveries.of(data["phone"], data["out_id"]).as_json()


@smscode.command("reset")
@click.argument("phone")
@click.option(
    "--purpose",
    default=None,
    help="Only this purpose's code and failures (default: every purpose).",
)
@with_appcontext
def reset(phone: str, purpose: str | None) -> None:
    """Unlock PHONE: clear its codes, failures and throttles."""
    service = _service()
    with _errors():
        e164 = service.normalize(phone)
        removed = service.reset(e164, purpose)
    scope = _t("cli.reset.scope", purpose=purpose) if purpose else ""
    click.echo(_t("cli.reset", phone=mask_phone(e164), scope=scope, removed=removed))


# -- guard -----------------------------------------------------------------------------------
@smscode.group("guard")
def guard() -> None:
    """Inspect and clear the SMS-pumping guard: budgets and number-prefix blocks."""


def _guard_data(service: SmsCodeService) -> dict[str, Any]:
    counts, prefixes = service.guard_status()
    settings = service.guard
    return {
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


@guard.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def guard_status(as_json: bool) -> None:
    """Show the global send budget and every number prefix the guard counts (sends,
    verifies and conversion over the sliding window, blocks and their time left)."""
    service = _service()
    with _errors():
        data = _guard_data(service)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    if data["global"]:
        click.echo(
            _t(
                "cli.guard.global",
                sends=", ".join(
                    _t("cli.status.send_item", used=g["used"], limit=g["limit"])
                    for g in data["global"]
                ),
            )
        )
    if not data["prefixes"]:
        click.echo(_t("cli.guard.none"))
        return
    click.echo(_t("cli.guard.header"))
    for p in data["prefixes"]:
        click.echo(
            _t(
                "cli.guard.row",
                prefix=p["prefix"],
                sends=f"{p['sends']:g}",
                verifies=f"{p['verifies']:g}",
                conversion="-" if p["conversion"] is None else f"{p['conversion']:.0%}",
                blocked=_t("cli.guard.blocked", seconds=p["blocked_for"])
                if p["blocked_for"]
                else _t("cli.guard.not_blocked"),
                counted=", ".join(
                    _t("cli.status.send_item", used=c["used"], limit=c["limit"])
                    for c in p["counted"]
                )
                or "-",
            ).rstrip()
        )


@guard.command("unblock")
@click.argument("prefix")
@with_appcontext
def guard_unblock(prefix: str) -> None:
    """Lift the block of PREFIX (as `guard status` shows it, e.g. +861380013) and forget
    its conversion counts, so it is judged afresh."""
    service = _service()
    prefix = prefix.strip()
    with _errors():
        found = service.guard_unblock(prefix)
    click.echo(_t("cli.guard.unblocked" if found else "cli.guard.not_found", prefix=prefix))


# -- notify ----------------------------------------------------------------------------------
def _parse_params(value: str) -> dict[str, Any]:
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


@smscode.command("notify")
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
    if file_path is not None:
        entries = _read_phone_file(file_path)
        source, place_key = file_path.name, "cli.notify.line"
    else:
        entries = [
            (entry, i)
            for i, entry in enumerate((e for e in _PHONE_SEPARATORS.split(phones or "") if e), 1)
        ]
        source, place_key = "--phones", "cli.notify.entry"
    if not entries:
        raise click.UsageError(_t("cli.notify.no_phones", source=source))
    client = _client()
    if not (sign_name or client.sign_name):
        raise click.ClickException(_t("cli.notify.no_sign_name"))
    raw = [entry for entry, _ in entries]
    valid, invalid = client.normalize_phones(raw)
    where: dict[str, int] = {}
    for entry, place in entries:
        where.setdefault(entry, place)
    duplicates = len(raw) - len(valid) - len(invalid)
    invalid_lines = []
    if invalid:
        invalid_lines.append(_t("cli.notify.invalid", count=len(invalid)))
        invalid_lines += [
            "  "
            + _t(
                "cli.notify.invalid_item",
                entry=_mask_entry(entry),
                where=_t(place_key, number=where[entry]) if entry in where else "?",
            )
            for entry in invalid[:MAX_INVALID_LISTED]
        ]
        if len(invalid) > MAX_INVALID_LISTED:
            invalid_lines.append(
                "  " + _t("cli.notify.invalid_more", count=len(invalid) - MAX_INVALID_LISTED)
            )
    if not valid:
        click.echo("\n".join(invalid_lines))
        raise click.ClickException(_t("cli.notify.no_valid", source=source))

    responses: list[SendSmsResponse] = []
    # Progress on stderr, so stdout holds only the summary (for scripts and logs).
    with click.progressbar(
        length=len(valid), label=_t("cli.notify.progress"), file=sys.stderr
    ) as bar:

        def advance(response: SendSmsResponse) -> None:
            bar.update(len(response.phone_numbers))

        try:
            responses = client.send_message(
                valid,
                params,
                template_code,
                skip_invalid=True,
                on_batch=advance,
                out_id=out_id,
                sign_name=sign_name,
                sms_up_extend_code=sms_up_extend_code,
            )
        except AliyunSmsError as exc:
            responses = list(getattr(exc, "responses", None) or [])
            if not responses:  # refused before any call: nothing went out
                raise click.ClickException(str(exc)) from None
    lines, all_sent = _summary(responses, len(valid))
    if duplicates > 0:
        lines.append(_t("cli.notify.duplicates", count=duplicates))
    click.echo("\n".join(lines + invalid_lines))
    if not all_sent or invalid:
        click.get_current_context().exit(1)


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
    special = {phone_column.lower(), SIGN_NAME_COLUMN, EXTEND_CODE_COLUMN}
    client = _client()
    entries: list[BatchEntry] = []
    lines: list[int] = []
    bad: list[str] = []
    for number, row in people:
        where = _t("cli.notify.line", number=number)
        values = {k: v for k, v in row.items() if k and k.lower() not in special}
        empty = [k for k, v in values.items() if not v]
        if empty:  # a blank variable would go out as an empty word, or fail the whole call
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
    with _errors():
        plan = client.prepare_batch(entries, sign_name=sign_name)
    for problem in plan.problems:
        bad.append(
            _t(
                f"cli.notify.bad.{problem.field}",
                where=_t("cli.notify.line", number=lines[problem.index]),
                entry=problem.shown or "-",
            )
        )
    bad_lines = (
        [_t("cli.notify.bad_rows", count=len(bad))]
        + ["  " + line for line in bad[:MAX_INVALID_LISTED]]
        if bad
        else []
    )
    if len(bad) > MAX_INVALID_LISTED:
        bad_lines.append("  " + _t("cli.notify.invalid_more", count=len(bad) - MAX_INVALID_LISTED))
    if not plan.ready:
        click.echo("\n".join(bad_lines))
        raise click.ClickException(_t("cli.notify.no_valid", source=path.name))
    ready = [entries[r.index] for r in plan.ready]
    responses: list[SendSmsResponse] = []
    with click.progressbar(
        length=len(ready), label=_t("cli.notify.progress"), file=sys.stderr
    ) as bar:
        try:
            responses = client.send_batch(
                ready,
                template_code,
                sign_name=sign_name,
                out_id=out_id,
                on_batch=lambda r: bar.update(len(r.phone_numbers)),
            )
        except AliyunSmsError as exc:
            responses = list(getattr(exc, "responses", None) or [])
            if not responses:  # refused before any call: nothing went out
                raise click.ClickException(str(exc)) from None
    summary, all_sent = _summary(responses, len(ready))
    if plan.duplicates:
        summary.append(_t("cli.notify.duplicates", count=plan.duplicates))
    click.echo("\n".join(summary + bad_lines))
    if not all_sent or bad:
        click.get_current_context().exit(1)


# -- delivery --------------------------------------------------------------------------------
def _parse_date(ctx: click.Context, param: click.Parameter, value: str | None) -> date:
    if value is None:
        return datetime.now(CHINA_TZ).date()
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(value.strip(), fmt).date()
        except ValueError:
            continue
    raise click.BadParameter(_t("cli.date.format"))


@smscode.command("delivery")
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
    client = _client()
    with _errors():
        report = client.query_send_details(
            phone, biz_id=biz_id, send_date=send_date, page_size=page_size, page=page
        )
    records = [
        {
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
        for r in report
    ]
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
    header = tuple(
        _t(f"cli.delivery.{column}")
        for column in ("phone", "status", "error", "template", "sent", "received", "out_id")
    )
    rows = [
        (
            str(rec["phone"]),
            _status_text(str(rec["status"])),
            r.error_code or "-",
            r.template_code or "-",
            _format_time(r.send_time),
            _format_time(r.receive_time),
            r.out_id or "-",
        )
        for rec, r in zip(records, report, strict=True)
    ]
    if rows:
        for line in _table([header, *rows]):
            click.echo(line)
    shown = _t(
        "cli.delivery.shown", shown=len(rows), total=report.total_count, date=send_date.isoformat()
    )
    if report.total_count > page * page_size:
        shown += _t("cli.delivery.more", page=page + 1)
    click.echo(shown)


_STATUS_KEYS = {
    "WAITING": "cli.delivery.waiting",
    "FAILED": "cli.delivery.failed",
    "DELIVERED": "cli.delivery.delivered",
}


def _status_text(name: str) -> str:
    """A receipt status in the CLI's language; an unknown one as the provider named it."""
    key = _STATUS_KEYS.get(name)
    return _t(key) if key else name


def _display_width(text: str) -> int:
    """Terminal columns: a CJK character (wide or full-width) takes two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows padded into columns by display width, so Chinese headers line up too."""
    widths = [max(_display_width(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            str(cell) + " " * (w - _display_width(str(cell)))
            for cell, w in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    ]


# -- doctor ----------------------------------------------------------------------------------
_DOCTOR_MARKS = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


@smscode.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@with_appcontext
def doctor(as_json: bool) -> None:
    """Check the configured account before users do: endpoint, clock, AccessKey,
    signature, templates (international ones too) and store, one line each, for every
    Alibaba Cloud sender of SMSCODE_SENDER. Exits 1 when any check fails."""
    from flask_smscode.cli.doctor import run_checks
    from flask_smscode.senders.base import FAIL, WARN

    checks = run_checks(_app())
    failures = sum(c.status == FAIL for c in checks)
    warnings = sum(c.status == WARN for c in checks)

    def text(key: str | None, params: dict[str, Any]) -> str:
        return _t(key, **params) if key else ""

    def label(check: Any) -> str:
        """The check's name, with the sender's in front when SMSCODE_SENDER names several."""
        name = _t(f"cli.doctor.check.{check.check}", subject=check.subject).strip()
        return _t("cli.doctor.label", sender=check.sender, label=name) if check.sender else name

    rendered = [
        {
            **c.as_dict(),
            "label": label(c),
            "detail": text(c.key, c.params),
            "fix": text(c.fix_key, {**c.params, **c.fix_params}),
        }
        for c in checks
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "ok": failures == 0,
                    "failures": failures,
                    "warnings": warnings,
                    "checks": rendered,
                },
                ensure_ascii=False,
            )
        )
    else:
        rows = [
            (
                f"{_DOCTOR_MARKS[c['status']]} {_t('cli.doctor.status.' + c['status'])}",
                c["label"],
                c["detail"]
                + (
                    "  " + _t("cli.doctor.fix", fix=c["fix"])
                    if c["fix"] and c["status"] != "ok"
                    else ""
                ),
            )
            for c in rendered
        ]
        for line in _table(rows):
            click.echo(line)
        click.echo(
            _t("cli.doctor.summary.fail", failures=failures, warnings=warnings)
            if failures
            else _t("cli.doctor.summary.ok", warnings=warnings)
        )
    if failures:
        click.get_current_context().exit(1)
