"""Receipts (SmsReport) and replies (SmsUp) consumed from Alibaba's message queue, end to end.

The real consumer (flask_smscode/aliyun/queue.py) fetches its temporary credentials with the
real SDK from the loopback Dysmsapi server's QueryTokenForMnsQueue (signature checked) and
talks REST to the loopback MNS server (signature, STS token, long polling, visibility
timeout checked), recording into the app's real store (memory:// and Redis).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_smscode import delivery_status, get_service, send_code
from flask_smscode.aliyun.mns import MnsClient, MnsCredentials, MnsMessage
from flask_smscode.aliyun.queue import TokenSource, decode_message
from flask_smscode.cli.receipts import receipt_consumer
from flask_smscode.metrics import REPLIES
from flask_smscode.senders.replies import Reply
from flask_smscode.signals import delivery_reported, reply_received
from tests.helpers import E164, PHONE
from tests.servers.mns_server import REPLY_QUEUE, REPORT_QUEUE, MnsServer, queue_config, sms_up

OTHER = "13900139000"


@pytest.fixture
def mns() -> Iterator[MnsServer]:
    with MnsServer(visibility_timeout=1.0) as server:
        yield server


@pytest.fixture
def queue_app(make_app: Callable[..., Flask], mns: MnsServer, sms_server: Any) -> Iterator[Flask]:
    app = make_app(SMSCODE_RESEND_INTERVAL_SECONDS=0, **queue_config(mns, sms_server))
    yield app
    sms_server.token_issuer = None


@pytest.fixture
def replies_seen(queue_app: Flask) -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append(kwargs)

    reply_received.connect(receiver)
    yield seen
    reply_received.disconnect(receiver)


def test_a_report_from_the_queue_lands_in_the_delivery_records(
    queue_app: Flask, mns: MnsServer, sms_server: Any
) -> None:
    reported: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        reported.append(kwargs)

    with queue_app.app_context():
        send_code(PHONE)
        assert delivery_status(PHONE).state == "waiting"
    message_id = mns.send_json(REPORT_QUEUE, sms_server.delivery_report(sms_server.last_sms(PHONE)))
    delivery_reported.connect(receiver)
    try:
        counts = receipt_consumer(queue_app).run_batch("SmsReport")
    finally:
        delivery_reported.disconnect(receiver)
    assert counts == {"recorded": 1, "delivered": 1}
    assert mns.deleted == [message_id]
    with queue_app.app_context():
        assert delivery_status(PHONE).state == "delivered"
    assert [r["state"] for r in reported] == ["delivered"]
    # the token came through the real SDK, signed and checked by the Dysmsapi server
    assert ("SmsReport", REPORT_QUEUE) in sms_server.token_calls
    assert all(r.signature_ok for r in mns.requests)


@pytest.mark.parametrize("word", ["退订", "ＴＤ", "stop", " TD。", "Unsubscribe"])
def test_an_unsubscribe_reply_suppresses_the_number(
    queue_app: Flask, mns: MnsServer, replies_seen: list[dict[str, Any]], word: str
) -> None:
    mns.send_json(REPLY_QUEUE, sms_up(PHONE, word, 1))
    mns.send_json(REPLY_QUEUE, sms_up(OTHER, "TD是什么意思", 2))
    counts = receipt_consumer(queue_app).run_batch("SmsUp")
    assert counts == {"recorded": 2, "unsubscribed": 1, "received": 1}
    service = get_service(queue_app)
    assert service.suppression.suppressed([E164, "+8613900139000"]) == {E164}
    assert [(s["phone"], s["unsubscribed"], s["content"]) for s in replies_seen] == [
        (E164, True, word),
        ("+8613900139000", False, "TD是什么意思"),
    ]
    assert mns.pending(REPLY_QUEUE) == 0


def test_duplicate_messages_are_recorded_once(
    queue_app: Flask, mns: MnsServer, replies_seen: list[dict[str, Any]]
) -> None:
    first = mns.send_json(REPLY_QUEUE, sms_up(PHONE, "hello", 77))
    second = mns.send_json(REPLY_QUEUE, sms_up(PHONE, "hello", 77))  # delivered twice
    counts = receipt_consumer(queue_app).run_batch("SmsUp")
    assert counts == {"recorded": 2, "received": 1, "duplicate": 1}
    assert sorted(mns.deleted) == sorted([first, second])
    assert len(replies_seen) == 1


class CrashingClient(MnsClient):
    """The process dies after recording and before deleting: the delete never happens."""

    def delete(self, queue: str, credentials: MnsCredentials, receipt_handle: str) -> None:
        raise SystemExit("killed between record and delete")


def test_a_crash_between_record_and_delete_replays_the_message_once(
    queue_app: Flask, mns: MnsServer, replies_seen: list[dict[str, Any]]
) -> None:
    message_id = mns.send_json(REPLY_QUEUE, sms_up(PHONE, "退订", 5))
    crashed = receipt_consumer(queue_app)
    crashed.client = CrashingClient(mns.endpoint, "http", 2.0)
    with pytest.raises(SystemExit):
        crashed.run_batch("SmsUp")
    assert mns.deleted == [] and len(replies_seen) == 1  # recorded, not deleted
    time.sleep(1.1)  # the visibility timeout: the queue hands it out again
    counts = receipt_consumer(queue_app).run_batch("SmsUp")
    assert counts == {"recorded": 1, "duplicate": 1}
    assert mns.deleted == [message_id]
    assert mns.received == [message_id, message_id]
    assert len(replies_seen) == 1  # signalled once
    assert get_service(queue_app).suppression.is_suppressed(E164)


def test_malformed_messages_are_counted_and_deleted(queue_app: Flask, mns: MnsServer) -> None:
    REPLIES.reset()
    ids = [
        mns.send_raw(REPLY_QUEUE, "%%% not base64, not json"),
        mns.send_raw(REPLY_QUEUE, "WzEsMiwzXQ=="),  # base64 of [1,2,3]: not an object
        mns.send_json(REPLY_QUEUE, {"phone_number": PHONE}),  # no content
        mns.send_raw(REPLY_QUEUE, "eyJhIjoxfQ==", body_md5="0" * 32),  # MD5 mismatch
    ]
    consumer = receipt_consumer(queue_app)
    counts = consumer.run_batch("SmsUp")
    assert counts == {"malformed": 4}
    assert sorted(mns.deleted) == sorted(ids)
    assert mns.pending(REPLY_QUEUE) == 0
    assert REPLIES.snapshot()[("queue_reply", "malformed")] == 4
    # and the loop goes on: the next (empty) long poll is answered, nothing crashed
    assert consumer.run_batch("SmsUp") == {}


def test_an_expired_token_is_refreshed(queue_app: Flask, mns: MnsServer, sms_server: Any) -> None:
    ttls = iter([1.0, 3600.0, 3600.0])
    sms_server.token_issuer = lambda message_type, queue: mns.issue_token(queue, next(ttls))
    consumer = receipt_consumer(queue_app)
    # a clock 10 minutes slow: the first token (1 s) looks fresh to the consumer
    consumer.tokens = TokenSource(
        consumer.tokens.transport, consumer.tokens.domain, clock=lambda: time.time() - 600
    )
    calls_before = len(sms_server.token_calls)
    consumer.tokens.get("SmsUp", REPLY_QUEUE)  # the 1-second token, cached
    time.sleep(1.5)
    mns.send_json(REPLY_QUEUE, sms_up(PHONE, "hi", 9))
    assert consumer.run_batch("SmsUp") == {"receive_failed": 1}
    assert mns.requests[-1].code == "SecurityTokenExpired"
    assert consumer.run_batch("SmsUp") == {"recorded": 1, "received": 1}  # a new token
    assert len(sms_server.token_calls) == calls_before + 2


def test_the_token_is_renewed_before_its_expire_time(mns: MnsServer, sms_server: Any) -> None:
    from flask_smscode.aliyun.settings import AliyunSettings
    from flask_smscode.aliyun.transport import Transport
    from tests.helpers import ACCESS_KEY_ID, ACCESS_KEY_SECRET

    sms_server.token_issuer = lambda message_type, queue: mns.issue_token(queue, 3600)
    try:
        settings = AliyunSettings.build(
            ACCESS_KEY_ID, ACCESS_KEY_SECRET, endpoint=sms_server.endpoint, protocol="http"
        )
        now = [time.time()]
        tokens = TokenSource(Transport(settings), sms_server.endpoint, clock=lambda: now[0])
        first = tokens.get("SmsUp", REPLY_QUEUE)
        assert tokens.get("SmsUp", REPLY_QUEUE) is first  # cached
        now[0] += 3600 - 121  # 121 s left: still used
        assert tokens.get("SmsUp", REPLY_QUEUE) is first
        now[0] += 2  # 119 s left: renewed before it expires
        second = tokens.get("SmsUp", REPLY_QUEUE)
        assert second.access_key_id != first.access_key_id
        assert second.expires_at > first.expires_at - 10
    finally:
        sms_server.token_issuer = None


def test_a_stop_during_a_batch_keeps_the_rest_undeleted(queue_app: Flask, mns: MnsServer) -> None:
    ids = [mns.send_json(REPLY_QUEUE, sms_up(f"1380013{i:04d}", "TD", i)) for i in range(5)]
    stop = threading.Event()
    consumer = receipt_consumer(queue_app, stop)

    class StopAfterOne:
        def __init__(self) -> None:
            self.calls = 0

        def record_reports(self, reports: Any) -> dict[str, int]:
            raise AssertionError("no report expected")

        def record_replies(self, replies: list[Reply]) -> dict[str, int]:
            self.calls += 1
            stop.set()  # SIGTERM arrives while the first message is recorded
            return get_service(queue_app).replies.record(replies, queue_app)

    consumer.sink = StopAfterOne()
    counts = consumer.run_batch("SmsUp")
    assert counts == {"recorded": 1, "unsubscribed": 1, "kept": 4}
    assert mns.deleted == [ids[0]]
    assert mns.pending(REPLY_QUEUE) == 4  # nothing lost: they come back


def test_decode_accepts_a_plain_json_body() -> None:
    message = MnsMessage("1", "h", '{"phone_number":"13800138000","content":"TD"}')
    reply = decode_message("SmsUp", message)
    assert isinstance(reply, Reply) and reply.phones[0] == E164
    assert "TD" not in repr(reply)  # the user's text stays out of repr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SMSCODE_ALIYUN_MNS_ACCOUNT_ID", "acct-1"),
        ("SMSCODE_ALIYUN_MNS_WAIT_SECONDS", 31),
        ("SMSCODE_ALIYUN_MNS_BATCH_SIZE", 0),
        ("SMSCODE_ALIYUN_MNS_MESSAGE_TYPES", ["SmsReport", "VoiceReport"]),
        ("SMSCODE_ALIYUN_MNS_REPLY_QUEUE", "bad/name"),
        ("SMSCODE_ALIYUN_MNS_ENDPOINT", "https://mns.example.com/"),
    ],
)
def test_bad_queue_settings_fail_at_start_up_naming_the_key(
    make_app: Callable[..., Flask], key: str, value: Any
) -> None:
    from flask_smscode import ConfigurationError

    with pytest.raises(ConfigurationError, match=key):
        make_app(**{key: value})


def test_bad_queue_settings_fail_at_start_up_whatever_the_sender(
    make_app: Callable[..., Flask],
) -> None:
    """The queue's keys are the report channel's (aliyun/reports.py), not the sender's: an
    app that sends through another vendor but consumes Alibaba's queue fails at start-up."""
    from flask_smscode import ConfigurationError

    with pytest.raises(ConfigurationError, match="SMSCODE_ALIYUN_MNS_BATCH_SIZE"):
        make_app(SMSCODE_SENDER="console", SMSCODE_ALIYUN_MNS_BATCH_SIZE=0)


def test_plain_http_to_a_remote_queue_is_refused(make_app: Callable[..., Flask]) -> None:
    from flask_smscode import ConfigurationError

    with pytest.raises(ConfigurationError, match="SMSCODE_ALIYUN_MNS_ENDPOINT"):
        make_app(SMSCODE_ALIYUN_MNS_ACCOUNT_ID="123")  # the fixtures' protocol is http


def test_the_queue_names_default_to_the_account_and_can_be_overridden() -> None:
    from flask_smscode.aliyun.mns import MnsSettings

    settings = MnsSettings.from_config({"SMSCODE_ALIYUN_MNS_ACCOUNT_ID": 42})
    assert settings.queues == {
        "SmsReport": "Alicom-Queue-42-SmsReport",
        "SmsUp": "Alicom-Queue-42-SmsUp",
    }
    assert settings.protocol == "https" and settings.wait_seconds == 10
    only = MnsSettings.from_config(
        {
            "SMSCODE_ALIYUN_MNS_REPLY_QUEUE": "My-Up-Queue",
            "SMSCODE_ALIYUN_MNS_MESSAGE_TYPES": "SmsUp",
        }
    )
    assert only.queues == {"SmsUp": "My-Up-Queue"}
