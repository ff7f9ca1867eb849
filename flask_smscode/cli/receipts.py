"""``flask smscode receipts consume``, and :func:`consume_receipts` for apps that run their
own workers: delivery receipts (SmsReport) and replies (SmsUp) from Alibaba's message queue.

The consumer (:mod:`flask_smscode.aliyun.queue`) records through the app's service, so a
receipt from the queue lands exactly where a pushed one does (the same OutId matching,
duplicate and late handling, ``delivery_reported`` signal and metrics), and a reply is
recorded, may unsubscribe the number and sends ``reply_received``. The function lives with
the command because it is a surface like the command: it is the only place that may join the
app's service (core) with a vendor's consumer.

SIGTERM and SIGINT set the stop event: the consumer finishes the message it is recording,
abandons the rest of the batch (undeleted, so it comes back) and the command exits 0 after
the current long poll returns (at most SMSCODE_ALIYUN_MNS_WAIT_SECONDS).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Sequence
from typing import Any

import click
from flask.cli import with_appcontext

from flask_smscode.aliyun.mns import MnsSettings
from flask_smscode.aliyun.queue import ReceiptConsumer
from flask_smscode.aliyun.settings import AliyunSettings
from flask_smscode.aliyun.transport import Transport
from flask_smscode.cli.output import _t, errors, flask_app
from flask_smscode.core.service import SmsCodeService
from flask_smscode.extension import EXTENSION_KEY, get_service, init_app
from flask_smscode.senders.replies import Reply
from flask_smscode.senders.reports import Report


class ServiceSink:
    """The app's service as the consumer's :class:`~flask_smscode.senders.replies.ReceiptSink`;
    signals are sent with ``app`` as sender (no app context needed in worker threads)."""

    def __init__(self, service: SmsCodeService, app: Any) -> None:
        self.service = service
        self.app = app

    def record_reports(self, reports: Sequence[Report]) -> dict[str, int]:
        return self.service.deliveries.record(reports, self.app)

    def record_replies(self, replies: Sequence[Reply]) -> dict[str, int]:
        return self.service.replies.record(replies, self.app)


def receipt_consumer(app: Any, stop: threading.Event | None = None) -> ReceiptConsumer:
    """A consumer of ``app``'s queues, its settings validated (ConfigurationError names the
    key: SMSCODE_ALIYUN_MNS_ACCOUNT_ID, the AccessKey...)."""
    service = get_service(app) if EXTENSION_KEY in app.extensions else init_app(app)
    settings = MnsSettings.from_config(app.config)
    transport = Transport(AliyunSettings.from_config(app.config))
    return ReceiptConsumer(settings, transport, ServiceSink(service, app), stop=stop)


def consume_receipts(app: Any, *, stop: threading.Event | None = None) -> dict[str, int]:
    """Consume ``app``'s SmsReport and SmsUp queues until ``stop`` is set (forever without
    one); returns the counts per outcome. For apps with their own worker process::

        stop = threading.Event()
        flask_smscode.consume_receipts(app, stop=stop)  # another thread: stop.set()

    Runs one thread per queue; installs no signal handler (the command does).
    """
    return receipt_consumer(app, stop).run()


@click.group("receipts")
def receipts() -> None:
    """Delivery receipts and replies from Alibaba's message queue (MNS)."""


@receipts.command("consume")
@with_appcontext
def consume() -> None:
    """Consume the SmsReport and SmsUp queues until SIGTERM or Ctrl-C.

    Receipts land in the same delivery records as pushed ones; replies are recorded and
    unsubscribe words put the number on the suppression list. A message is deleted only
    after it was recorded.
    """
    app = flask_app()
    stop = threading.Event()
    with errors():
        consumer = receipt_consumer(app, stop)

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        click.echo(_t("cli.receipts.started", queues=", ".join(consumer.queues.values())))
        counts = consumer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    shown = ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) or "-"
    click.echo(_t("cli.receipts.stopped", counts=shown))
