"""The consumer of Alibaba's SMS queues (SmsReport receipts, SmsUp replies): temporary
credentials, message decoding, and the receive → record → delete loop.

**Credentials.** Alibaba's SMS queues live in Alibaba's own MNS account
(``SMSCODE_ALIYUN_MNS_ENDPOINT``); an account reads its queues with temporary credentials
that Dybaseapi's ``QueryTokenForMnsQueue`` (``MessageType``, ``QueueName``; RPC-signed with
the sender's AccessKey, through :class:`~flask_smscode.aliyun.transport.Transport`) hands
out. They are cached per queue and fetched again :data:`REFRESH_BEFORE_SECONDS` before their
``ExpireTime`` (China time), as Alibaba's own samples do, and at once when MNS refuses them.

**Messages.** The body is base64 of one JSON object: the same object as one item of the
HTTP push (SmsReport: ``phone_number``, ``success``, ``err_code``, ``biz_id``, ``out_id``...;
SmsUp: ``phone_number``, ``content``, ``sequence_id``...). ``MessageBodyMD5`` is checked
when present (MD5 of the decoded body, as Alibaba's samples check it; the raw body's is
accepted too). A body that is not base64 is read as JSON itself. Anything that does not
decode is *malformed*: counted and deleted, so a poison message never loops.

**At least once.** Each message is recorded (through a
:class:`~flask_smscode.senders.replies.ReceiptSink`: the app's delivery records and reply
bookkeeping, both idempotent) and only then deleted. A crash in between leaves it in the
queue; it comes back after the visibility timeout and is recorded as a duplicate. A store
that fails keeps the rest of the batch undeleted and backs off (1, 2, 4... 60 s). A stop
(SIGTERM) is checked before each message: the batch is abandoned, never half-deleted.

One log line per non-empty batch (``receipts.batch``) and counters per outcome
(``smscode_queue_messages``); one thread per queue, so a long poll on one never delays the
other.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_smscode.aliyun.errors import AliyunProviderRefused, AliyunSmsError
from flask_smscode.aliyun.mns import (
    MESSAGE_TYPES,
    MnsClient,
    MnsCredentials,
    MnsError,
    MnsMessage,
    MnsSettings,
)
from flask_smscode.aliyun.receipts import CHINA_TZ
from flask_smscode.aliyun.replies import reply_from_object
from flask_smscode.aliyun.reports import parse_reports
from flask_smscode.aliyun.transport import Transport
from flask_smscode.errors import StorageUnavailable
from flask_smscode.events import log_event
from flask_smscode.metrics import REPLIES
from flask_smscode.senders.replies import MalformedReplies, ReceiptSink, Reply
from flask_smscode.senders.reports import MalformedReports, Report

REFRESH_BEFORE_SECONDS = 120.0  # Alibaba's samples: a token with < 2 minutes left is renewed
MAX_BACKOFF_SECONDS = 60.0


class MalformedMessage(ValueError):
    """A queue message that is not a receipt or a reply."""


class TokenSource:
    """QueryTokenForMnsQueue per queue, cached until :data:`REFRESH_BEFORE_SECONDS` before
    its ExpireTime; thread-safe (one consumer thread per queue shares it)."""

    def __init__(
        self, transport: Transport, domain: str, clock: Callable[[], float] = time.time
    ) -> None:
        self.transport = transport
        self.domain = domain
        self.clock = clock
        self._tokens: dict[str, MnsCredentials] = {}
        self._lock = threading.Lock()

    def get(self, message_type: str, queue: str) -> MnsCredentials:
        with self._lock:
            token = self._tokens.get(queue)
            if token is not None and token.expires_at - self.clock() > REFRESH_BEFORE_SECONDS:
                return token
        token = self._fetch(message_type, queue)
        with self._lock:
            self._tokens[queue] = token
        return token

    def invalidate(self, queue: str) -> None:
        """Forget a queue's token (MNS refused it): the next call fetches a new one."""
        with self._lock:
            self._tokens.pop(queue, None)

    def _fetch(self, message_type: str, queue: str) -> MnsCredentials:
        answer = self.transport.call(
            "QueryTokenForMnsQueue",
            {"MessageType": message_type, "QueueName": queue},
            domain=self.domain,
        )
        dto = answer.get("MessageTokenDTO")
        if answer.get("Code") != "OK" or not isinstance(dto, Mapping):
            raise AliyunProviderRefused(
                f"Alibaba Cloud answered QueryTokenForMnsQueue with "
                f"{answer.get('Code') or 'no code'}",
                provider_code=str(answer.get("Code") or "") or None,
                request_id=answer.get("RequestId"),
                http_status=200,
            )
        return MnsCredentials(
            str(dto.get("AccessKeyId") or ""),
            str(dto.get("AccessKeySecret") or ""),
            str(dto.get("SecurityToken") or ""),
            _expires_at(dto.get("ExpireTime"), self.clock()),
        )


def _expires_at(text: object, now: float) -> float:
    """ExpireTime (``yyyy-MM-dd HH:mm:ss``, China time) in epoch seconds; an unreadable one
    counts as already due (the token is used once, then fetched again)."""
    try:
        moment = datetime.strptime(str(text), "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return now
    return moment.timestamp()


def decode_message(message_type: str, message: MnsMessage) -> Report | Reply:
    """One queue message as a Report (SmsReport) or a Reply (SmsUp); raises
    MalformedMessage with a short reason."""
    raw = message.body.strip()
    try:
        body = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        body = raw.encode("utf-8")
    if message.body_md5:
        sums = {
            hashlib.md5(body, usedforsecurity=False).hexdigest().upper(),
            hashlib.md5(raw.encode(), usedforsecurity=False).hexdigest().upper(),
        }
        if message.body_md5 not in sums:
            raise MalformedMessage("MessageBodyMD5 does not match the body")
    try:
        item = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedMessage("the body is not JSON") from None
    if not isinstance(item, dict):
        raise MalformedMessage("the body is not a JSON object")
    try:
        if message_type == "SmsReport":
            # The same checks as a pushed report (aliyun/reports.py).
            return parse_reports(json.dumps([item]).encode())[0]
        return reply_from_object(item)
    except (MalformedReports, MalformedReplies) as exc:
        raise MalformedMessage(str(exc)) from None


@dataclass
class QueueCounts:
    """Outcomes across the consumer's life, per outcome name (thread-safe)."""

    counts: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, outcome: str, amount: int = 1) -> None:
        if amount:
            with self.lock:
                self.counts[outcome] = self.counts.get(outcome, 0) + amount

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return dict(self.counts)


class ReceiptConsumer:
    """Consume the configured queues until :attr:`stop` is set.

    ``sink`` records what is decoded; ``transport`` fetches the queue tokens; ``client``
    (default: one from ``settings``) talks to MNS. :meth:`run` blocks (one thread per queue);
    :meth:`run_batch` is one receive → record → delete round of one queue, for callers with
    their own loop.
    """

    def __init__(
        self,
        settings: MnsSettings,
        transport: Transport,
        sink: ReceiptSink,
        *,
        stop: threading.Event | None = None,
        client: MnsClient | None = None,
        tokens: TokenSource | None = None,
    ) -> None:
        self.settings = settings
        self.queues = dict(settings.require_queues())
        self.sink = sink
        self.stop = stop or threading.Event()
        self.client = client or MnsClient(settings.endpoint, settings.protocol, settings.timeout)
        self.tokens = tokens or TokenSource(transport, settings.token_endpoint)
        self.totals = QueueCounts()

    def run(self) -> dict[str, int]:
        """Consume every queue until :attr:`stop` is set; returns the counts per outcome."""
        threads = [
            threading.Thread(
                target=self._loop, args=(message_type,), name=f"smscode-{message_type}"
            )
            for message_type in self.queues
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.totals.snapshot()

    def _loop(self, message_type: str) -> None:
        backoff = 0.0
        while not self.stop.is_set():
            try:
                counts = self.run_batch(message_type)
            except Exception as exc:  # never let one queue's thread die: log, back off
                log_event(
                    logging.ERROR,
                    "receipts.batch",
                    queue=MESSAGE_TYPES[message_type],
                    outcome="error",
                    exception=type(exc).__name__,
                )
                counts = {"receive_failed": 1}
            if counts.get("receive_failed") or counts.get("kept"):
                backoff = min(MAX_BACKOFF_SECONDS, backoff * 2 or 1.0)
                self.stop.wait(backoff)
            else:
                backoff = 0.0

    def run_batch(self, message_type: str) -> dict[str, int]:
        """Receive one batch of ``message_type``'s queue (long polling), record each message
        and delete it once recorded. Returns this batch's counts per outcome: ``recorded``
        (with the sink's outcomes, e.g. ``delivered``, ``duplicate``, ``unsubscribed``),
        ``malformed``, ``kept`` (left in the queue), ``receive_failed``, ``delete_failed``."""
        kind = MESSAGE_TYPES[message_type]
        queue = self.queues[message_type]
        counts: dict[str, int] = {}

        def add(outcome: str, amount: int = 1) -> None:
            counts[outcome] = counts.get(outcome, 0) + amount
            self.totals.add(outcome, amount)

        try:
            credentials = self.tokens.get(message_type, queue)
            messages = self.client.receive(
                queue, credentials, self.settings.wait_seconds, self.settings.batch_size
            )
        except (AliyunSmsError, MnsError) as exc:
            if isinstance(exc, MnsError) and exc.credentials_refused:
                self.tokens.invalidate(queue)
            REPLIES.queue(kind, "receive_failed")
            add("receive_failed")
            code = exc.code if isinstance(exc, MnsError) else exc.provider_code or exc.code
            log_event(
                logging.WARNING,
                "receipts.batch",
                queue=kind,
                outcome="receive_failed",
                provider_code=code,
            )
            return counts
        for index, message in enumerate(messages):
            if self.stop.is_set():  # abandon the batch: the rest comes back, unrecorded
                add("kept", len(messages) - index)
                REPLIES.queue(kind, "kept", len(messages) - index)
                break
            try:
                item = decode_message(message_type, message)
            except MalformedMessage as exc:
                add("malformed")
                REPLIES.queue(kind, "malformed")
                log_event(
                    logging.WARNING,
                    "receipt",
                    queue=kind,
                    outcome="malformed",
                    reason=str(exc),
                    message_id=message.message_id,
                )
            else:
                try:
                    if isinstance(item, Report):
                        recorded = self.sink.record_reports([item])
                    else:
                        recorded = self.sink.record_replies([item])
                except StorageUnavailable:  # keep it and the rest: they come back
                    add("kept", len(messages) - index)
                    REPLIES.queue(kind, "kept", len(messages) - index)
                    break
                add("recorded")
                REPLIES.queue(kind, "recorded")
                for outcome, amount in recorded.items():
                    add(outcome, amount)
            try:
                self.client.delete(queue, credentials, message.receipt_handle)
            except MnsError as exc:  # it comes back and is recorded as a duplicate
                if exc.credentials_refused:
                    self.tokens.invalidate(queue)
                add("delete_failed")
                REPLIES.queue(kind, "delete_failed")
        if messages:
            log_event(logging.INFO, "receipts.batch", queue=kind, messages=len(messages), **counts)
        return counts


def consume(
    settings: MnsSettings,
    transport: Transport,
    sink: ReceiptSink,
    *,
    stop: threading.Event | None = None,
    **options: Any,
) -> dict[str, int]:
    """Build a :class:`ReceiptConsumer` and run it until ``stop`` is set."""
    return ReceiptConsumer(settings, transport, sink, stop=stop, **options).run()
