"""Replies (SmsUp, 上行短信) from Alibaba Cloud: parsing only.

Alibaba hands a user's reply over in the same JSON object both ways: pushed over HTTP (a
JSON array of them, to the URL set in the console, answered ``{"code": 0, "msg": ...}``; the
receiver is :mod:`flask_smscode.web.replies`) or as one message of the account's SmsUp queue
(:mod:`.queue`). Its fields: ``phone_number`` (mainland numbers as 11 digits),
``send_time`` (``yyyy-MM-dd HH:mm:ss``, China time), ``content`` (the text), ``sign_name``,
``dest_code`` (the number replied to, with the extension code of the send) and
``sequence_id`` (the reply's id: what makes recording it idempotent). What a reply means is
:mod:`flask_smscode.core.replies`' business.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flask_smscode.aliyun.receipts import CHINA_TZ
from flask_smscode.aliyun.reports import report_phones
from flask_smscode.senders.replies import MalformedReplies, Reply

__all__ = ["MalformedReplies", "parse_replies", "reply_from_object"]

_REPLY_ID = re.compile(r"[0-9A-Za-z_.:-]{1,40}")
MAX_CONTENT_CHARS = 1000  # a long SMS is at most a few hundred characters


def reply_from_object(item: object) -> Reply:
    """One SmsUp object as a :class:`Reply`; raises MalformedReplies with a short reason."""
    if not isinstance(item, Mapping):
        raise MalformedReplies("a reply is not a JSON object")
    for name in ("phone_number", "send_time", "content", "sign_name", "dest_code"):
        if item.get(name) is not None and not isinstance(item[name], (str, int)):
            raise MalformedReplies(f"a reply's {name} is not text")
    content = item.get("content")
    if not isinstance(content, str):
        raise MalformedReplies("a reply has no content")
    phone = str(item.get("phone_number") or "")
    sent = str(item.get("send_time") or "")
    return Reply(
        phones=report_phones(phone),
        reply_id=_reply_id(item.get("sequence_id"), phone, sent, content),
        sent_s=_epoch_seconds(sent),
        content=content[:MAX_CONTENT_CHARS],
        received_at=sent[:19],
        dest_code=str(item.get("dest_code") or "")[:32],
        sign_name=str(item.get("sign_name") or "")[:64],
    )


def parse_replies(body: bytes) -> list[Reply]:
    """The replies of one HTTP push (a JSON array); raises MalformedReplies."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MalformedReplies("the body is not JSON") from None
    if not isinstance(data, list):
        raise MalformedReplies("the body is not a JSON array")
    return [reply_from_object(item) for item in data]


def _reply_id(raw: Any, phone: str, sent: str, content: str) -> str:
    """The provider's ``sequence_id``; without a usable one, a digest of the reply itself
    (the same reply delivered twice still gets the same id)."""
    text = str(raw) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else ""
    if _REPLY_ID.fullmatch(text):
        return text
    digest = hashlib.sha256(f"{phone}\n{sent}\n{content}".encode()).hexdigest()
    return f"h:{digest[:32]}"


def _epoch_seconds(text: str) -> int:
    """``yyyy-MM-dd HH:mm:ss`` in China time as epoch seconds; 0 when it is not one."""
    try:
        moment = datetime.strptime(text[:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        return 0
    return int(moment.timestamp())
