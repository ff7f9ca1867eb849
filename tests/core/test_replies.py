"""Replies (core/replies.py): which replies unsubscribe, recorded once per reply id, the
``reply_received`` signal, and the settings' validation at start-up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from flask_smscode import ConfigurationError, get_service, reply_received
from flask_smscode.config import ReplySettings
from flask_smscode.core.replies import reply_word
from flask_smscode.metrics import REPLIES
from flask_smscode.senders.replies import Reply
from tests.helpers import E164


def reply(content: str, reply_id: str = "1", sent_s: int = 1_700_000_000) -> Reply:
    return Reply((E164,), reply_id, sent_s, content)


@pytest.fixture
def signals() -> Iterator[list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        seen.append({"sender": sender, **kwargs})

    reply_received.connect(receiver)
    yield seen
    reply_received.disconnect(receiver)


@pytest.mark.parametrize(
    ("text", "word"),
    [("ＴＤ", "td"), (" t d ", "td"), ("退订！", "退订"), ("STOP.", "stop"), ("Ｓｔｏｐ", "stop")],
)
def test_reply_word_ignores_width_case_spaces_and_punctuation(text: str, word: str) -> None:
    assert reply_word(text) == word


@pytest.mark.parametrize("text", ["TD", "td", "ＴＤ", "退订", "退", "stop", "STOP!", "T"])
def test_unsubscribe_words(app: Flask, text: str) -> None:
    assert get_service(app).replies.is_unsubscribe(text)


@pytest.mark.parametrize("text", ["TD是什么", "请不要退订", "stopping by", "", "好的", "1"])
def test_other_replies_are_messages(app: Flask, text: str) -> None:
    assert not get_service(app).replies.is_unsubscribe(text)


def test_the_words_are_configurable(make_app: Callable[..., Flask]) -> None:
    app = make_app(SMSCODE_UNSUBSCRIBE_WORDS=["N", "不要"])
    replies = get_service(app).replies
    assert replies.is_unsubscribe("ｎ") and replies.is_unsubscribe("不要")
    assert not replies.is_unsubscribe("TD")
    off = make_app(SMSCODE_UNSUBSCRIBE_WORDS=[])
    assert not get_service(off).replies.is_unsubscribe("TD")


def test_a_reply_is_recorded_and_signalled_once(app: Flask, signals: list[dict[str, Any]]) -> None:
    REPLIES.reset()
    replies = get_service(app).replies
    assert replies.record([reply("TD", "9")], app) == {"unsubscribed": 1}
    assert replies.record([reply("TD", "9")], app) == {"duplicate": 1}
    assert replies.record([reply("hello", "10", 1_700_000_100)], app) == {"received": 1}
    # an older reply arriving late is still a different message: signalled, counted "late"
    assert replies.record([reply("earlier", "8", 1_699_999_000)], app) == {"late": 1}
    assert [(s["content"], s["unsubscribed"]) for s in signals] == [
        ("TD", True),
        ("hello", False),
        ("earlier", False),
    ]
    assert all(s["sender"] is app and s["phone"] == E164 for s in signals)
    assert get_service(app).suppression.is_suppressed(E164)
    counts = REPLIES.snapshot()
    assert counts[("reply", "duplicate")] == 1 and counts[("reply", "unsubscribed")] == 1


def test_a_reply_without_a_usable_phone_is_unknown(app: Flask) -> None:
    assert get_service(app).replies.record([Reply((), "1", 0, "TD")], app) == {"unknown": 1}


def test_a_failing_receiver_does_not_fail_the_recording(app: Flask) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"{kwargs['phone']} broke")

    reply_received.connect(broken)
    try:
        assert get_service(app).replies.record([reply("hi", "3")], app) == {"received": 1}
    finally:
        reply_received.disconnect(broken)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SMSCODE_ALIYUN_REPLY_SECRET", "short"),
        ("SMSCODE_UNSUBSCRIBE_WORDS", [""]),
        ("SMSCODE_UNSUBSCRIBE_WORDS", 5),
        ("SMSCODE_SUPPRESS_CODES", "yes"),
    ],
)
def test_bad_settings_name_their_key(key: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=key):
        ReplySettings.from_config({key: value})


def test_the_counts_are_prometheus_families(app: Flask) -> None:
    from flask_smscode.metrics import SmsCodeCollector

    REPLIES.reset()
    get_service(app).replies.record([reply("TD", "41")], app)
    REPLIES.queue("reply", "malformed")
    REPLIES.queue("nonsense", "typed-by-a-user")  # bounded: becomes "other"
    families = {f.name: f for f in SmsCodeCollector().collect()}
    replies = {tuple(s.labels.values()): s.value for s in families["smscode_replies"].samples}
    assert replies[("unsubscribed",)] == 1
    queue = {tuple(s.labels.values()): s.value for s in families["smscode_queue_messages"].samples}
    assert queue[("reply", "malformed")] == 1 and queue[("other", "other")] == 1
