"""Alibaba's SmsUp objects (aliyun/replies.py): the push's array and one queue message."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from flask_smscode.aliyun.replies import parse_replies, reply_from_object
from flask_smscode.senders.replies import MalformedReplies
from tests.helpers import E164
from tests.servers.mns_server import sms_up


def test_a_push_of_replies() -> None:
    body = json.dumps(
        [sms_up("13800138000", "退订", 12, "2026-12-05 21:00:00")], ensure_ascii=False
    )
    [reply] = parse_replies(body.encode())
    assert reply.phones[0] == E164
    assert reply.reply_id == "12" and reply.content == "退订"
    assert reply.sent_s == int(datetime(2026, 12, 5, 13, 0, tzinfo=timezone.utc).timestamp())
    assert reply.received_at == "2026-12-05 21:00:00" and reply.dest_code == "1069000012345"


def test_without_a_sequence_id_the_same_reply_gets_the_same_id() -> None:
    item = {"phone_number": "13800138000", "send_time": "2026-12-05 21:00:00", "content": "TD"}
    first, second = reply_from_object(item), reply_from_object(dict(item))
    assert first.reply_id == second.reply_id and first.reply_id.startswith("h:")
    assert reply_from_object({**item, "content": "T"}).reply_id != first.reply_id
    forged = reply_from_object({**item, "sequence_id": "a|b"})  # "|" would split the field
    assert "|" not in forged.reply_id


@pytest.mark.parametrize(
    "body",
    [b"nope", b"{}", b"[1]", b'[{"phone_number": "13800138000"}]', b'[{"content": ["x"]}]'],
)
def test_malformed_pushes(body: bytes) -> None:
    with pytest.raises(MalformedReplies):
        parse_replies(body)


def test_a_bad_phone_or_time_is_kept_as_unknown() -> None:
    reply = reply_from_object({"phone_number": "abc", "content": "hi", "send_time": "later"})
    assert reply.phones == () and reply.sent_s == 0
