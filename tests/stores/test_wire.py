"""stores/wire.py: one command on a pooled connection, against a real redis-server."""

from __future__ import annotations

import hashlib
import time
import uuid

import pytest
import redis
from redis.exceptions import NoScriptError, ResponseError

from flask_smscode.stores.wire import call, pack

_BUSY_HALF_A_SECOND = """
local t = redis.call('TIME')
while true do
  local n = redis.call('TIME')
  if (n[1] - t[1]) * 1000000 + (n[2] - t[2]) >= 500000 then return 'late' end
end
"""


@pytest.mark.parametrize(
    "parts",
    [
        ["GET", "k"],
        ["EVALSHA", "a" * 40, 2, "{p}:1", b"{p}:2", "数字", 0, -17, 10**18],
        ["SET", b"\x00\r\n\xff", ""],
    ],
)
def test_pack_writes_what_redis_py_writes(parts: list[object]) -> None:
    """Byte for byte the command redis-py's own encoder packs (one buffer, or its parts)."""
    connection = redis.Connection()
    assert pack(parts) == b"".join(connection.pack_command(*parts))


def test_call_answers_as_the_client_does(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = f"wire-{uuid.uuid4().hex}"
    try:
        assert call(client, ["SET", key, "值", "PX", 60_000]) == "OK"
        assert call(client, ["GET", key]) == client.get(key) == "值"
        body = "return {KEYS[1], ARGV[1], tonumber(ARGV[2]) + 1}"
        sha = client.script_load(body)
        assert call(client, ["EVALSHA", sha, 1, key, "x", 41]) == [key, "x", 42]
    finally:
        client.delete(key)
        client.close()


def test_an_error_reply_is_redis_pys_exception_and_keeps_the_connection(redis_url: str) -> None:
    """NOSCRIPT is what tells the store to load its script: it must arrive as redis-py's
    NoScriptError, and the connection stays in the pool (an error reply is a whole reply)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        call(client, ["PING"])
        before = client.connection_pool._created_connections
        missing = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
        with pytest.raises(NoScriptError):
            call(client, ["EVALSHA", missing, 0])
        with pytest.raises(ResponseError):
            call(client, ["INCR", "wire-not-a-number-" + uuid.uuid4().hex, "extra"])
        assert call(client, ["PING"]) == "PONG"  # the raw reply: no response callbacks
        assert client.connection_pool._created_connections == before
    finally:
        client.close()


def test_a_timeout_disconnects_so_no_late_reply_is_read_by_the_next_command(
    redis_url: str,
) -> None:
    """The stall case: a reply that comes after the timeout must not be taken as the answer
    of the next command sent on the same pooled connection."""
    client = redis.Redis.from_url(redis_url, decode_responses=True, socket_timeout=0.2)
    key = f"wire-{uuid.uuid4().hex}"
    try:
        client.set(key, "mine", px=60_000)
        with pytest.raises(redis.TimeoutError):
            call(client, ["EVAL", _BUSY_HALF_A_SECOND, 0])
        time.sleep(0.6)  # the script ends and its late reply sits in the old socket
        assert call(client, ["GET", key]) == "mine"
    finally:
        redis.Redis.from_url(redis_url).delete(key)
        client.close()
