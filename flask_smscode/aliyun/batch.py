"""Per-recipient notifications: one template, each number with its own values and signature.

``send_batch`` validates every entry first (the number with the same rules as
``send_message``, the values a flat object of text, the signature given or the default, the
uplink extension code 1-7 digits), then sends SendBatchSms calls of at most 100 numbers,
``max_concurrency`` at a time, exactly as ``send_message`` runs its SendSms calls.

De-duplication, decided: an entry repeated *exactly* (same number once normalised, same
values, signature and extension code) is sent once — a list pasted twice must not bill
twice. The same number with *different* values is not merged: each entry is its own message
(two bookings, two texts).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flask_smscode.aliyun.errors import AliyunInvalidArguments
from flask_smscode.aliyun.notify import (
    NotifyAnswers,
    SuppressionCheck,
    _mask_raw,
    answered_call,
    raise_for_failures,
    run_bounded,
)
from flask_smscode.aliyun.numbers import provider_phone
from flask_smscode.aliyun.sendbatch import MAX_PHONES_PER_BATCH_CALL, send_batch_sms
from flask_smscode.aliyun.sendsms import SendSmsResponse, as_text, check_extend_code
from flask_smscode.phones import mask_phone

if TYPE_CHECKING:
    from flask_smscode.aliyun.settings import AliyunSettings
    from flask_smscode.aliyun.transport import Transport

# Entry fields a problem can be about; the CLI names them per row.
PHONE, PARAMS, SIGN_NAME, EXTEND_CODE = "phone", "params", "sign_name", "sms_up_extend_code"


@dataclass(frozen=True)
class BatchEntry:
    """One recipient of a batch: the number, its template values, optionally its own
    signature and uplink extension code (else the default signature, no code)."""

    phone: str
    params: Mapping[str, Any] = field(default_factory=dict)
    sign_name: str | None = None
    sms_up_extend_code: str | None = None


@dataclass(frozen=True)
class BatchProblem:
    """Why entry ``index`` (0-based) cannot be sent; ``shown`` is safe to print (a masked
    number), never a template value."""

    index: int
    field: str
    reason: str
    shown: str = ""


@dataclass(frozen=True)
class ReadyEntry:
    """A validated entry, in the form the call takes."""

    index: int
    e164: str
    params: dict[str, str]
    sign_name: str
    extend_code: str | None

    @property
    def key(self) -> tuple[object, ...]:
        return (self.e164, tuple(sorted(self.params.items())), self.sign_name, self.extend_code)


@dataclass
class BatchPlan:
    """What ``prepare_batch`` found: the entries to send, the problems, the duplicates."""

    ready: list[ReadyEntry]
    problems: list[BatchProblem]
    duplicates: int = 0


class BatchNotifications:
    """``send_batch`` for :class:`~flask_smscode.AliyunSms` (needs ``settings``,
    ``transport`` and ``_normalize_entries`` from the notifications mixin)."""

    settings: AliyunSettings
    transport: Transport
    suppression: SuppressionCheck | None  # unsubscribed numbers, skipped (see notify.py)

    if TYPE_CHECKING:

        def _normalize_entries(self, entries: Sequence[object]) -> list[str | None]: ...

    def prepare_batch(
        self, entries: Iterable[BatchEntry | Mapping[str, Any]], *, sign_name: str | None = None
    ) -> BatchPlan:
        """Validate every entry (a :class:`BatchEntry` or a mapping with the same keys);
        exact duplicates are dropped and counted, problems listed per entry."""
        items = [_as_entry(e) for e in entries]
        numbers = self._normalize_entries([e.phone if e is not None else "" for e in items])
        default_sign = sign_name or self.settings.sign_name
        plan = BatchPlan([], [])
        seen: set[tuple[object, ...]] = set()
        for index, (entry, e164) in enumerate(zip(items, numbers, strict=True)):
            problem = _check(index, entry, e164, default_sign)
            if problem is not None:
                plan.problems.append(problem)
                continue
            assert entry is not None and e164 is not None  # _check found no problem
            ready = ReadyEntry(
                index,
                e164,
                {str(k): as_text(v) for k, v in entry.params.items()},
                str(entry.sign_name or default_sign),
                check_extend_code(entry.sms_up_extend_code),
            )
            if ready.key in seen:
                plan.duplicates += 1
                continue
            seen.add(ready.key)
            plan.ready.append(ready)
        if any(r.extend_code for r in plan.ready) and not all(r.extend_code for r in plan.ready):
            plan.problems += [
                BatchProblem(
                    r.index,
                    EXTEND_CODE,
                    "missing while other entries "
                    "have one (SendBatchSms takes one for every "
                    "number or none)",
                    mask_phone(r.e164),
                )
                for r in plan.ready
                if not r.extend_code
            ]
            plan.ready = [r for r in plan.ready if r.extend_code]
        return plan

    def send_batch(
        self,
        entries: Iterable[BatchEntry | Mapping[str, Any]],
        template_code: str | None,
        *,
        sign_name: str | None = None,
        out_id: str | None = None,
        skip_invalid: bool = False,
        on_batch: Callable[[SendSmsResponse], None] | None = None,
    ) -> NotifyAnswers:
        """Send one template with per-entry values (and signatures) through SendBatchSms;
        return one answer per call (at most 100 numbers each, ``max_concurrency`` in flight,
        ``on_batch`` called in this thread as each finishes); numbers on the suppression
        list are skipped and counted in ``.suppressed``, as by ``send_message``.

        Errors: 46001 before anything is sent when the template is missing, the list is
        empty, or an entry is invalid (with ``skip_invalid``, entries whose *number* is
        invalid are left out instead; other problems still refuse); after every call ran,
        46002/46003 if any failed, ``.responses`` holding every call's answer.
        """
        if not template_code:
            raise AliyunInvalidArguments("No template code was given")
        plan = self.prepare_batch(entries, sign_name=sign_name)
        problems = [p for p in plan.problems if not (skip_invalid and p.field == PHONE)]
        if problems:
            shown = "; ".join(
                f"entry {p.index + 1} {p.field}: {p.reason}" + (f" ({p.shown})" if p.shown else "")
                for p in problems[:5]
            )
            raise AliyunInvalidArguments(
                f"{len(problems)} entr(ies) of the batch are not valid: {shown}"
            )
        suppressed = 0
        if self.suppression is not None and plan.ready:
            listed = set(self.suppression(sorted({r.e164 for r in plan.ready})))
            suppressed = len(listed)
            plan.ready = [r for r in plan.ready if r.e164 not in listed]
            if not plan.ready:  # every number unsubscribed: nothing to send, no error
                nothing = NotifyAnswers()
                nothing.suppressed = suppressed
                return nothing
        if not plan.ready:
            raise AliyunInvalidArguments("The phone list is empty")
        answers = NotifyAnswers(
            run_bounded(
                _chunks(plan.ready),
                lambda chunk: self._send_chunk(chunk, template_code, out_id),
                self.settings.max_concurrency,
                on_batch,
            )
        )
        answers.suppressed = suppressed
        raise_for_failures(answers, "SendBatchSms")
        return answers

    def _send_chunk(
        self, chunk: list[ReadyEntry], template_code: str, out_id: str | None
    ) -> SendSmsResponse:
        batch_out_id = out_id or uuid.uuid4().hex
        phones = [provider_phone(r.e164) for r in chunk]
        return answered_call(
            "notify_batch",
            phones,
            template_code,
            batch_out_id,
            lambda: send_batch_sms(
                self.transport,
                phones,
                [r.sign_name for r in chunk],
                template_code,
                [r.params for r in chunk],
                extend_codes=[r.extend_code for r in chunk] if chunk[0].extend_code else None,
                out_id=batch_out_id,
            ),
        )


def _as_entry(entry: object) -> BatchEntry | None:
    """A mapping ``{"phone", "params", "sign_name", "sms_up_extend_code"}`` as an entry;
    ``None`` for anything else (reported as a problem of that entry)."""
    if isinstance(entry, BatchEntry):
        return entry
    if isinstance(entry, Mapping) and "phone" in entry:
        return BatchEntry(
            entry["phone"],
            entry.get("params") or {},
            entry.get("sign_name"),
            entry.get("sms_up_extend_code"),
        )
    return None


def _check(
    index: int, entry: BatchEntry | None, e164: str | None, default_sign: str | None
) -> BatchProblem | None:
    """The first problem of one entry, or ``None``. Values are never shown."""
    if entry is None:
        return BatchProblem(index, PHONE, "not an entry with a phone")
    if e164 is None:
        raw = entry.phone
        return BatchProblem(
            index,
            PHONE,
            "not a valid mobile number of an allowed region",
            _mask_raw(raw if isinstance(raw, str) else repr(raw)),
        )
    if not isinstance(entry.params, Mapping) or not all(
        isinstance(k, str) and k and isinstance(v, (str, int, float)) and not isinstance(v, bool)
        for k, v in entry.params.items()
    ):
        return BatchProblem(
            index, PARAMS, "template values must be an object of text", mask_phone(e164)
        )
    sign = entry.sign_name or default_sign
    if not isinstance(sign, str) or not sign.strip():
        return BatchProblem(
            index, SIGN_NAME, "no sign name (nor SMSCODE_ALIYUN_SIGN_NAME)", mask_phone(e164)
        )
    try:
        check_extend_code(entry.sms_up_extend_code)
    except AliyunInvalidArguments:
        return BatchProblem(
            index, EXTEND_CODE, "SmsUpExtendCode must be 1 to 7 digits", mask_phone(e164)
        )
    return None


def _chunks(ready: list[ReadyEntry]) -> Iterator[list[ReadyEntry]]:
    for start in range(0, len(ready), MAX_PHONES_PER_BATCH_CALL):
        yield ready[start : start + MAX_PHONES_PER_BATCH_CALL]
