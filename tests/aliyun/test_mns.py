"""The MNS REST client (aliyun/mns.py) against the loopback MNS server, which checks the
signature, the STS token, long polling and receipt handles."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from flask_smscode.aliyun.mns import MnsClient, MnsCredentials, MnsError, signature, string_to_sign
from tests.servers import mns_server
from tests.servers.mns_server import REPLY_QUEUE, MnsServer

QUEUE = REPLY_QUEUE


@pytest.fixture
def mns() -> Iterator[MnsServer]:
    with MnsServer(visibility_timeout=1.0) as server:
        yield server


def credentials(mns: MnsServer, queue: str = QUEUE, ttl: float = 3600) -> MnsCredentials:
    dto = mns.issue_token(queue, ttl)
    return MnsCredentials(
        dto["AccessKeyId"], dto["AccessKeySecret"], dto["SecurityToken"], time.time() + ttl
    )


def test_the_string_to_sign_is_mns_format() -> None:
    headers = {
        "content-type": "text/xml;charset=utf-8",
        "date": "Sat, 05 Dec 2026 13:00:00 GMT",
        "x-mns-version": "2015-06-06",
        "x-mns-a": "1",
    }
    resource = "/queues/q/messages?waitseconds=10"
    text = string_to_sign("GET", headers, resource)
    assert text == (
        "GET\n\ntext/xml;charset=utf-8\nSat, 05 Dec 2026 13:00:00 GMT\n"
        "x-mns-a:1\nx-mns-version:2015-06-06\n/queues/q/messages?waitseconds=10"
    )
    assert text == mns_server.string_to_sign("GET", headers, resource)  # written apart
    assert signature("secret", text) == signature("secret", text)
    assert len(signature("secret", text)) == 28  # base64 of 20 bytes


def test_receive_and_delete(mns: MnsServer) -> None:
    client = MnsClient(mns.endpoint, "http", 2.0)
    creds = credentials(mns)
    message_id = mns.send_raw(QUEUE, "aGVsbG8=")
    [message] = client.receive(QUEUE, creds, 1, 16)
    assert message.message_id == message_id and message.body == "aGVsbG8="
    assert "aGVsbG8" not in repr(message)  # bodies (phones, replies) stay out of repr
    client.delete(QUEUE, creds, message.receipt_handle)
    assert mns.deleted == [message_id]
    assert all(r.signature_ok for r in mns.requests)


def test_long_polling_answers_an_empty_queue_after_the_wait(mns: MnsServer) -> None:
    client = MnsClient(mns.endpoint, "http", 2.0)
    started = time.monotonic()
    assert client.receive(QUEUE, credentials(mns), 1, 16) == []
    assert 0.9 < time.monotonic() - started < 3


def test_a_wrong_secret_or_token_is_refused(mns: MnsServer) -> None:
    client = MnsClient(mns.endpoint, "http", 2.0)
    good = credentials(mns)
    with pytest.raises(MnsError) as refused:
        client.receive(QUEUE, good._replace(access_key_secret="wrong"), 1, 1)
    assert refused.value.code == "SignatureDoesNotMatch" and refused.value.credentials_refused
    with pytest.raises(MnsError) as token:
        client.receive(QUEUE, good._replace(security_token="forged"), 1, 1)
    assert token.value.code == "InvalidSecurityToken"
    with pytest.raises(MnsError) as other:
        client.receive("Alicom-Queue-9-SmsUp", good, 1, 1)  # the token is for one queue
    assert other.value.code == "AccessDenied"


def test_a_stale_receipt_handle_cannot_delete(mns: MnsServer) -> None:
    client = MnsClient(mns.endpoint, "http", 2.0)
    creds = credentials(mns)
    mns.send_raw(QUEUE, "eA==")
    [first] = client.receive(QUEUE, creds, 1, 1)
    time.sleep(1.1)  # visible again: received with a new handle
    [second] = client.receive(QUEUE, creds, 1, 1)
    assert second.dequeue_count == 2 and second.receipt_handle != first.receipt_handle
    with pytest.raises(MnsError) as stale:
        client.delete(QUEUE, creds, first.receipt_handle)
    assert stale.value.status == 404 and stale.value.code == "ReceiptHandleError"
    client.delete(QUEUE, creds, second.receipt_handle)


def test_no_server_is_a_network_error() -> None:
    client = MnsClient("127.0.0.1:9", "http", 0.5)
    creds = MnsCredentials("id", "secret", "token", time.time() + 60)
    with pytest.raises(MnsError) as failed:
        client.receive(QUEUE, creds, 1, 1)
    assert failed.value.status == 0


def test_an_answer_with_a_doctype_is_refused() -> None:
    from flask_smscode.aliyun.mns import _error_code

    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><Error><Code>&a;</Code></Error>'
    assert _error_code(bomb) == ""
