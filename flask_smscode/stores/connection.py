"""Redis clients from ``SMSCODE_STORAGE_URI``, with the schemes Flask-Limiter and ``limits``
users already write: ``redis://``, ``rediss://``, ``redis+unix://``,
``redis+cluster://[:password@]host:port[,host:port...]`` and
``redis+sentinel://[:password@]host:port[,host:port...]/service_name[/db]`` (the ``rediss+``
forms use TLS). ``SMSCODE_STORAGE_OPTIONS`` are redis-py keyword arguments and are checked
against what redis-py accepts, so a typo fails at start-up instead of answering 503 forever.

Clients fail fast — short socket timeouts, no blind retry loop — so an unreachable Redis
becomes a 503 within the storage timeout instead of hanging a worker. A retry is safe
anyway: every decision script carries a deadline (see :mod:`.redis`).
"""

from __future__ import annotations

import inspect
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import RedisClusterException
from redis.retry import Retry

from flask_smscode.errors import ConfigurationError

KEY = "SMSCODE_STORAGE_URI"


@dataclass(frozen=True)
class Connected:
    client: Any  # redis.Redis or redis.cluster.RedisCluster
    cluster: bool
    kind: str  # "redis", "cluster" or "sentinel", for messages
    watch: SentinelWatch | None = None


class SentinelWatch:
    """Drops the master's pooled connections the moment the sentinels announce a new master.

    redis-py asks the sentinels for the master when it opens a connection, but connections
    already in the pool stay on the old master, which accepts writes until Sentinel demotes
    it (seconds later, ~10 s measured). A code consumed there would still be live on the new
    master and verify a second time. A thread per process listens for ``+switch-master`` on
    the sentinels and repoints the pool (see _switch), so the next command finds the new master.
    (Redis' own ``min-replicas-to-write 1`` narrows what an old master accepts, too.)
    """

    def __init__(self, sentinel: Any, service: str, pool: Any) -> None:
        self._sentinel, self._service, self._pool = sentinel, service, pool
        self._pid = 0
        self._lock = threading.Lock()
        self._closed = False

    def ensure(self) -> None:
        """Start the listener in this process (threads do not survive a gunicorn fork)."""
        if self._pid != os.getpid() and not self._closed:
            with self._lock:
                if self._pid != os.getpid():
                    self._pid = os.getpid()
                    threading.Thread(
                        target=self._run,
                        args=(self._pid,),
                        daemon=True,
                        name="smscode-sentinel-watch",
                    ).start()

    def close(self) -> None:
        self._closed = True

    def _switch(self) -> None:
        """Point the pool at the new master. redis-py's own refresh updates the master's
        address and closes the idle connections; a connection busy with a command is left
        to finish it (closing its socket under it would fail that request) and, being on
        the old address, is dropped instead of returned to the pool when it comes back."""
        try:
            self._pool.get_master_address()
        except (redis.RedisError, OSError):
            self._pool.disconnect(inuse_connections=False)

    def _listening(self, pid: int) -> bool:
        return self._pid == pid and not self._closed

    def _run(self, pid: int) -> None:
        while self._listening(pid):
            for node in self._sentinel.sentinels:
                pubsub = node.pubsub(ignore_subscribe_messages=True)
                try:
                    pubsub.subscribe("+switch-master")
                    while self._listening(pid):
                        message = pubsub.get_message(timeout=0.5)
                        data = message["data"] if message else None
                        if isinstance(data, bytes):
                            data = data.decode("utf-8", "replace")
                        if isinstance(data, str) and data.split(" ", 1)[0] == self._service:
                            self._switch()
                except (redis.RedisError, OSError, ValueError):
                    pass  # this sentinel is down: listen to the next one
                finally:
                    try:
                        pubsub.close()
                    except (redis.RedisError, OSError):
                        pass
                if not self._listening(pid):
                    return
            time.sleep(0.5)


class LazyCluster:
    """A RedisCluster built on first use.

    redis-py's RedisCluster connects to its seed nodes in its constructor; an app must still
    start while its Redis is down (and answer 503 until it is back), so the client is built
    when the first command needs it, and a failure to build is a connection error.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:  # else another thread built it while we waited
                    try:
                        self._client = self._factory()
                    except RedisClusterException as exc:
                        raise redis.ConnectionError(f"cluster unreachable: {exc}") from None
        return self._client

    def register_script(self, script: str) -> Script:
        # Bytes: Script would otherwise ask the (not yet built) client for its encoder.
        return Script(self, script.encode())  # type: ignore[arg-type]  # the lazy proxy is duck-typed

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


def _nodes(netloc: str, scheme: str) -> tuple[str | None, str | None, list[tuple[str, int]]]:
    """``[user:password@]host:port,host:port`` → (username, password, [(host, port)])."""
    auth, _, hosts = netloc.rpartition("@")
    username = password = None
    if auth:
        user, _, secret = auth.partition(":")
        username, password = (unquote(user) or None), (unquote(secret) or None)
    nodes = []
    for part in hosts.split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(
                f"{KEY}: {scheme}:// needs host:port pairs separated by "
                "commas, e.g. redis+cluster://10.0.0.1:7000,10.0.0.2:7000."
            )
        nodes.append((host.strip("[]"), int(port)))
    return username, password, nodes


def _accepted(*callables: Any) -> set[str]:
    names: set[str] = set()
    for fn in callables:
        names |= {
            name
            for name, p in inspect.signature(fn).parameters.items()
            if p.kind is not p.VAR_KEYWORD and name != "self"
        }
    return names


def _check_options(options: Mapping[str, Any], accepted: set[str], kind: str) -> None:
    unknown = sorted(set(options) - accepted)
    if unknown:
        raise ConfigurationError(
            f"SMSCODE_STORAGE_OPTIONS: unknown option {unknown[0]!r} for {kind} (redis-py "
            "does not accept it); check the spelling, e.g. 'socket_timeout'."
        )


def _defaults(timeout: float) -> dict[str, Any]:
    return {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "retry_on_timeout": False,
        "health_check_interval": 0,
        "decode_responses": True,
    }


def connect(uri: str, *, timeout: float, options: Mapping[str, Any]) -> Connected:
    """Build the client for ``uri`` (no I/O: connections open on first use)."""
    parts = urlsplit(uri)
    scheme = parts.scheme.lower()
    settings = _defaults(timeout)
    if scheme in ("redis+cluster", "rediss+cluster"):
        from redis.cluster import REDIS_ALLOWED_KEYS, ClusterNode, RedisCluster

        _check_options(
            options,
            _accepted(RedisCluster.__init__)
            | set(REDIS_ALLOWED_KEYS)
            | {"health_check_interval", "ssl_min_version", "ssl_ciphers"},
            "redis+cluster://",
        )
        username, password, nodes = _nodes(parts.netloc, scheme)
        del settings["health_check_interval"], settings["retry_on_timeout"]
        # No retry, as for the other topologies: redirects (MOVED, ASK) are followed
        # regardless, and a failure asks for a topology refresh that the next command runs
        # (a dead master's promoted replica is found then). A retry in line doubled the
        # wait on a stalled node — the cluster client retries timeouts and a handshake
        # that timed out whatever the Retry's error list says — past the storage timeout
        # (the soak measured 2-3 s server-side in a 4 s stall; bench/soak.py).
        settings["retry"] = Retry(NoBackoff(), 0)
        settings.update(username=username, password=password, ssl=scheme.startswith("rediss"))
        settings.update(options)
        # redis-py leaves these constructors unannotated.
        startup = [ClusterNode(h, p) for h, p in nodes]
        return Connected(
            LazyCluster(lambda: RedisCluster(startup_nodes=startup, **settings)), True, "cluster"
        )
    if scheme in ("redis+sentinel", "rediss+sentinel"):
        from redis.sentinel import Sentinel

        _check_options(
            options, _accepted(redis.Redis.__init__) | {"sentinel_kwargs"}, "redis+sentinel://"
        )
        username, password, nodes = _nodes(parts.netloc, scheme)
        path = [p for p in parts.path.split("/") if p]
        if not path:
            raise ConfigurationError(
                f"{KEY}: redis+sentinel:// needs the service name as its "
                "path, e.g. redis+sentinel://10.0.0.1:26379/mymaster."
            )
        service, db = path[0], int(path[1]) if len(path) > 1 and path[1].isdigit() else 0
        options = dict(options)
        # Sentinels fail fast too: redis-py's default would retry 10 times with backoff.
        sentinel_kwargs = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            **options.pop("sentinel_kwargs", {}),
        }
        settings.update(
            username=username, password=password, db=db, ssl=scheme.startswith("rediss")
        )
        settings.update(options)
        sentinel = Sentinel(nodes, sentinel_kwargs=sentinel_kwargs)
        client = sentinel.master_for(service, redis_class=redis.Redis, **settings)
        return Connected(
            client, False, "sentinel", SentinelWatch(sentinel, service, client.connection_pool)
        )
    if scheme in ("redis", "rediss", "redis+unix", "unix"):
        _check_options(
            options,
            _accepted(
                redis.Redis.__init__,
                redis.Connection.__init__,
                redis.connection.AbstractConnection.__init__,
            ),
            f"{scheme}://",
        )
        settings.update(options)
        url = (
            "unix://" + uri.split("://", 1)[1]
            if scheme == "redis+unix"
            else scheme + uri[uri.index(":") :]
        )
        return Connected(redis.Redis.from_url(url, **settings), False, "redis")
    raise ConfigurationError(f"{KEY}: unsupported scheme {scheme!r}.")
