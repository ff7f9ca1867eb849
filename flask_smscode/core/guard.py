"""The SMS-pumping guard's settings: budgets, number prefixes, conversion thresholds and the
pre-send hook.

SMS pumping spreads sends over thousands of numbers in premium ranges, from thousands of
addresses, so per-phone and per-IP limits never trip. What betrays it is *conversion*: codes
sent to a number range that nobody ever types back. The counting happens in the store,
inside the send and verify decisions (see ``stores/lua/send.lua``); this module only turns
the ``SMSCODE_*`` settings into what the store counts for one phone.

**Who is behind the sends (the source rule).** Conversion alone would let one client close
a whole block for everyone: 20 unverified codes to one 7-digit block, from one address and
within its own per-IP budget, and 10 000 real users get no code for 12 hours. So the store
also keeps, per prefix, each *source*'s unverified sends (``u:<tag>`` fields, at most 16 per
prefix, each kept one conversion window after the source's last send there):

- a source is the client's address (IPv4, or its /64 for IPv6, as the per-IP limits count
  it), or the key ``SMSCODE_GUARD_SOURCE(request)`` returns (an account id, a device id);
  only a short hash of it (8 characters) reaches the store;
- a source with ``SMSCODE_GUARD_SOURCE_SENDS`` unverified sends to one prefix is refused
  itself (429 ``throttled``, Retry-After until its count's window ends); a verify by the
  same source takes one off, so an honest source that types its codes never reaches it;
- a prefix is blocked for everyone only when its conversion is low **and** at least
  ``SMSCODE_GUARD_MIN_SOURCES`` distinct sources have unverified sends in it;
- a prefix blocked before is on probation for one more block length after its block ends
  (field ``bh``): it is judged from its first unverified send, and the sources behind the
  block it had still count (a slow drip that waits out the block gets no fresh budget of
  ``SMSCODE_GUARD_MIN_SENDS``; one address can prolong, never start, a block for
  everyone);
- a send whose source is unknown (the Python API without ``client_ip``) weighs no sources:
  the conversion rule alone decides, as before.

**Shadow mode** (``SMSCODE_GUARD_MODE = "shadow"``): the same decisions and state, but the
guard's refusals (global, prefix, blocked, conversion, source) are logged (``event=guard
would_block=<reason>``) and counted (``guard_refusals`` label ``would_block_<reason>``)
while the SMS goes out. Per-IP and per-phone limits are not the guard: they still refuse.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE

from flask_smscode.config import DEFAULTS, Limit, get_setting, parse_int, parse_limits
from flask_smscode.errors import ConfigurationError
from flask_smscode.stores import GuardRequest

PrefixFunction = Callable[[str], str]
PreSendHook = Callable[[Any, str, str], Any]
SourceFunction = Callable[[Any], Any]
GUARD_MODES = ("enforce", "shadow")

# Mainland mobiles: the first 7 digits of the national number name the operator's block
# (HLR segment, 10 000 numbers), the unit premium-range fraud buys. Elsewhere no such
# plan is universal: the country code and 3 digits.
DEFAULT_PREFIX_DIGITS: dict[str, int] = dict(DEFAULTS["SMSCODE_PREFIX_DIGITS"])


def number_prefix(e164: str, digits: Mapping[str, int]) -> str:
    """``+8613800138000`` → ``+861380013``: the country code and the first ``digits[cc]``
    (else ``digits["*"]``) digits of the national number."""
    number = e164.lstrip("+")
    for length in (1, 2, 3):  # calling codes are prefix-free: at most one matches
        country = number[:length]
        if int(country or 0) in COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        country, length = number[:3], 3
    keep = digits.get(country, digits.get("*", 3))
    return "+" + country + number[length : length + keep]


@functools.lru_cache(maxsize=4096)  # a client sends and verifies from one address
def _source_hash(source: str) -> str:
    digest = hashlib.blake2b(source.encode(), digest_size=6).digest()
    return base64.urlsafe_b64encode(digest).decode()


@dataclass(frozen=True)
class GuardSettings:
    """The validated guard settings of one app."""

    global_limits: tuple[Limit, ...]
    prefix_limits: tuple[Limit, ...]
    prefix_of: PrefixFunction
    window: int  # seconds of the conversion guard's sliding window
    min_sends: int  # 0 turns the conversion guard off
    min_conversion: float
    block: int  # seconds a low-conversion prefix stays blocked
    pre_send_hook: PreSendHook | None
    min_sources: int = 0  # distinct sources before a prefix is blocked for everyone
    source_sends: int = 0  # unverified sends one source may leave in one prefix (0: off)
    shadow: bool = False  # SMSCODE_GUARD_MODE = "shadow"
    source_of: SourceFunction | None = None  # SMSCODE_GUARD_SOURCE

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> GuardSettings:
        def get(key: str) -> Any:
            return get_setting(config, key)

        digits = get("SMSCODE_PREFIX_DIGITS")
        if callable(digits):
            prefix_of: PrefixFunction = digits
        elif isinstance(digits, Mapping) and all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 14
            for k, v in digits.items()
        ):
            table = {**DEFAULT_PREFIX_DIGITS, **digits}

            # Cached: a verify follows its send within minutes, and both ask (bounded).
            @functools.lru_cache(maxsize=4096)
            def prefix_of(e164: str) -> str:
                return number_prefix(e164, table)
        else:
            raise ConfigurationError(
                "SMSCODE_PREFIX_DIGITS must be a dict of country calling code -> digits of "
                "the national number kept (e.g. {'86': 7, '*': 3}), or a callable "
                "taking the E.164 number and returning its prefix."
            )
        ratio = get("SMSCODE_GUARD_MIN_CONVERSION")
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 <= ratio <= 1:
            raise ConfigurationError(
                "SMSCODE_GUARD_MIN_CONVERSION must be a ratio from 0 to 1 "
                f"(0.2 = 20 %); got {ratio!r}."
            )
        return cls(
            global_limits=tuple(
                Limit.from_item(i) for i in parse_limits(get, "SMSCODE_GLOBAL_SEND_LIMITS")
            ),
            prefix_limits=tuple(
                Limit.from_item(i) for i in parse_limits(get, "SMSCODE_PREFIX_SEND_LIMITS")
            ),
            prefix_of=prefix_of,
            window=parse_int(get, "SMSCODE_GUARD_WINDOW_SECONDS", 60, 7 * 86400),
            min_sends=parse_int(get, "SMSCODE_GUARD_MIN_SENDS", 0, 1_000_000),
            min_conversion=float(ratio),
            block=parse_int(get, "SMSCODE_GUARD_BLOCK_SECONDS", 1, 30 * 86400),
            pre_send_hook=_hook(get("SMSCODE_PRE_SEND_HOOK")),
            min_sources=parse_int(get, "SMSCODE_GUARD_MIN_SOURCES", 0, 16),
            source_sends=parse_int(get, "SMSCODE_GUARD_SOURCE_SENDS", 0, 1_000_000),
            shadow=_mode(get("SMSCODE_GUARD_MODE")) == "shadow",
            source_of=_callable(
                get("SMSCODE_GUARD_SOURCE"),
                "SMSCODE_GUARD_SOURCE",
                "a callable (request) -> str, the source the guard weighs",
            ),
        )

    @property
    def converts(self) -> bool:
        return self.min_sends > 0

    def source_tag(self, request: Any, client: str | None) -> str | None:
        """The short hash of this request's source: ``SMSCODE_GUARD_SOURCE(request)`` when it
        returns a non-empty string, else ``client`` (the per-IP key: the address or its /64);
        ``None`` when neither is known. A hash, so no client text reaches the store."""
        source: Any = None
        if self.source_of is not None and request is not None:
            source = self.source_of(request)
            if source is not None and not isinstance(source, str):
                raise ConfigurationError(
                    "SMSCODE_GUARD_SOURCE: the callable must return a string or None."
                )
        source = source or client
        if not source or source == "unknown":
            return None
        return _source_hash(source)

    def request(self, e164: str, source: str | None = None) -> GuardRequest | None:
        """What the store counts for a send to ``e164`` (``None``: the guard is off);
        ``source`` is :meth:`source_tag`'s."""
        if not (self.global_limits or self.prefix_limits or self.converts):
            return None
        prefix = self.prefix_of(e164) if (self.prefix_limits or self.converts) else None
        if prefix is not None and (not isinstance(prefix, str) or not 0 < len(prefix) <= 32):
            raise ConfigurationError(
                "SMSCODE_PREFIX_DIGITS: the callable must return a "
                "non-empty string of at most 32 characters."
            )
        return GuardRequest(
            global_limits=self.global_limits,
            prefix=prefix,
            prefix_limits=self.prefix_limits,
            window_ms=self.window * 1000 if self.converts else 0,
            min_sends=self.min_sends,
            ratio_permille=round(self.min_conversion * 1000),
            block_ms=self.block * 1000,
            source=source if self.converts else None,
            min_sources=self.min_sources,
            source_sends=self.source_sends,
            shadow=self.shadow,
        )


def _mode(value: Any) -> str:
    if value not in GUARD_MODES:
        raise ConfigurationError(
            f"SMSCODE_GUARD_MODE must be one of {', '.join(map(repr, GUARD_MODES))}; got {value!r}."
        )
    return str(value)


def _callable(value: Any, key: str, what: str) -> Callable[..., Any] | None:
    """A callable setting: the callable, or a ``"module:function"`` path to one."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        module, _, name = value.partition(":")
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            raise ConfigurationError(
                f"{key}: cannot import {value!r} (write 'package.module:function')."
            ) from None
    if not callable(value):
        raise ConfigurationError(f"{key} must be {what}.")
    function: Callable[..., Any] = value
    return function


def _hook(value: Any) -> PreSendHook | None:
    """``SMSCODE_PRE_SEND_HOOK``: a callable, or a ``"module:function"`` path to one."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        module, _, name = value.partition(":")
        try:
            value = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            raise ConfigurationError(
                f"SMSCODE_PRE_SEND_HOOK: cannot import {value!r} (write 'package.module:function')."
            ) from None
    if not callable(value):
        raise ConfigurationError(
            "SMSCODE_PRE_SEND_HOOK must be a callable (request, phone_e164, purpose) -> None."
        )
    hook: PreSendHook = value
    return hook
