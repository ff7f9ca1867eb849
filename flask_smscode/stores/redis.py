"""Redis store (``redis://``, ``rediss://``): every decision is one Lua script.

The scripts ship as package files (``stores/lua/*.lua``) and are registered once per
client. The client is built to fail fast — short socket timeouts and no retry loop —
so an unreachable Redis becomes a 503 within about a second instead of hanging a worker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import wraps
from importlib import resources
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..config import Limit
from ..errors import StorageUnavailable
from .base import Keys, PhoneStatus, VerifyOutcome, VerifyResult

T = TypeVar("T")


def _load_script(name: str) -> str:
    return resources.files(__package__).joinpath("lua", name).read_text(encoding="utf-8")


def _unavailable_on_redis_error(method: Callable[..., T]) -> Callable[..., T]:
    """Turn any redis-py failure into StorageUnavailable (fail closed, no traceback)."""

    @wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return method(*args, **kwargs)
        except redis.RedisError as exc:
            raise StorageUnavailable() from exc

    return wrapper


class RedisStore:
    def __init__(self, uri: str, key_prefix: str = "smscode", timeout: float = 1.0,
                 **options: Any) -> None:
        self.keys = Keys(key_prefix)
        settings: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
            "retry_on_timeout": False,
            "health_check_interval": 0,
            "decode_responses": True,
        }
        settings.update(options)
        self.client: redis.Redis = redis.Redis.from_url(uri, **settings)
        self._reserve = self.client.register_script(_load_script("reserve_send.lua"))
        self._cancel = self.client.register_script(_load_script("cancel_send.lua"))
        self._check = self.client.register_script(_load_script("check_code.lua"))

    @property
    def connection_pool(self) -> redis.ConnectionPool:
        """Shared with the per-IP limiter so one app holds one pool."""
        return self.client.connection_pool

    def _send_keys(self, phone: str, purpose: str, limits: Sequence[Limit]) -> list[str]:
        k = self.keys
        return [k.code(phone, purpose), k.cooldown(phone), *(k.sends(phone, li) for li in limits)]

    @_unavailable_on_redis_error
    def reserve_send(self, phone: str, purpose: str, code_hash: str, send_id: str, *,
                     ttl: int, cooldown: int, limits: Sequence[Limit]) -> int:
        args: list[Any] = [code_hash, send_id, ttl, cooldown]
        for limit in limits:
            args += [limit.amount, limit.seconds]
        wait_ms = int(self._reserve(keys=self._send_keys(phone, purpose, limits), args=args))
        return 0 if wait_ms <= 0 else max(1, math.ceil(wait_ms / 1000))

    @_unavailable_on_redis_error
    def cancel_send(self, phone: str, purpose: str, send_id: str, *,
                    limits: Sequence[Limit]) -> None:
        self._cancel(keys=self._send_keys(phone, purpose, limits), args=[send_id])

    @_unavailable_on_redis_error
    def check_code(self, phone: str, purpose: str, code_hash: str, *,
                   max_attempts: int, window: int) -> VerifyResult:
        keys = [self.keys.code(phone, purpose), self.keys.failures(phone, purpose)]
        outcome, attempts_left, retry_after = self._check(
            keys=keys, args=[code_hash, max_attempts, window])
        return VerifyResult(VerifyOutcome(outcome), int(attempts_left), max(0, int(retry_after)))

    @_unavailable_on_redis_error
    def use_token(self, token_id: str, ttl: int) -> bool:
        return bool(self.client.set(self.keys.token(token_id), 1, nx=True, ex=ttl))

    @_unavailable_on_redis_error
    def status(self, phone: str, purpose: str, *, limits: Sequence[Limit]) -> PhoneStatus:
        k = self.keys
        pipe = self.client.pipeline(transaction=True)
        pipe.ttl(k.code(phone, purpose)).hget(k.code(phone, purpose), "id")
        pipe.get(k.failures(phone, purpose)).ttl(k.failures(phone, purpose))
        pipe.ttl(k.cooldown(phone))
        for limit in limits:
            pipe.get(k.sends(phone, limit))
        code_ttl, out_id, failures, failures_ttl, cooldown, *sends = pipe.execute()
        return PhoneStatus(
            code_ttl=max(0, code_ttl),
            out_id=out_id,
            failures=int(failures or 0),
            failures_ttl=max(0, failures_ttl),
            cooldown=max(0, cooldown),
            sends={limit.text: int(used or 0) for limit, used in zip(limits, sends, strict=True)},
        )

    @_unavailable_on_redis_error
    def reset(self, phone: str, purposes: Sequence[str], *, limits: Sequence[Limit]) -> int:
        k = self.keys
        names = [k.cooldown(phone), *(k.sends(phone, limit) for limit in limits)]
        for purpose in purposes:
            names += [k.code(phone, purpose), k.failures(phone, purpose)]
        return int(self.client.delete(*names))

    @_unavailable_on_redis_error
    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        self.client.close()
