"""One command on a pooled connection, without redis-py's per-command layers.

A send or a verify is one EVALSHA. Through ``Redis.evalsha`` that call walks redis-py's
generic command path: argument encoding one value at a time, the retry wrapper (retries
are off here: see connection.py), command-name parsing, and the observability hooks of
recent releases: about 30 Python calls more than the command itself, a fifth of the
Python of a wrong-code verify (profiled; bench/RESULTS.md). :func:`call` packs the command
in one pass and uses the same pool, connection class and reply parser redis-py would, so
everything that matters is unchanged: the socket timeouts, TLS, AUTH and the database
selected on connect, Sentinel's repointing of its pool (its connection class still checks
for a demoted master), ``decode_responses``, and redis-py's own exceptions (a
``NoScriptError`` still means "load the script").

Only for a client with one connection pool (single Redis, Sentinel): a cluster client
routes each command to its slot's node and follows redirections, which is what it is for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError


def pack(parts: Sequence[Any]) -> bytes:
    """The RESP array of ``parts`` (str as UTF-8, bytes as they are, ints in decimal), as
    redis-py's encoder would write them."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        if isinstance(part, bytes):
            data = part
        elif isinstance(part, str):
            data = part.encode()
        elif isinstance(part, int) and not isinstance(part, bool):
            data = b"%d" % part
        else:  # floats and the like: redis-py writes repr()
            data = repr(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def call(client: Any, parts: Sequence[Any]) -> Any:
    """Send ``parts`` as one command on a connection of ``client``'s pool and return the
    reply, decoded as the client's own commands are (``decode_responses``) but as Redis
    sends it: redis-py's per-command response callbacks (``PING`` → ``True``...) are not
    applied, and EVALSHA, what this is for, has none.

    A Redis error reply (``ResponseError`` and its kinds) leaves the connection usable, as
    in redis-py; any other failure (timeout, reset, a reply cut short) disconnects it
    before it goes back to the pool, so no later command reads this one's late reply.
    """
    pool = client.connection_pool
    connection = pool.get_connection()
    try:
        connection.send_packed_command([pack(parts)], check_health=False)
        return connection.read_response()
    except ResponseError:
        raise
    except BaseException:
        connection.disconnect()
        raise
    finally:
        pool.release(connection)
