"""``SMSCODE_SENDER`` as an ordered list of named senders, and ``SMSCODE_SENDERS_CONFIG``.

``SMSCODE_SENDER`` is one sender (``"aliyun"``, ``"console"``, a dotted path, a class or an
instance, as always), or several in order: a list/tuple, or a comma-separated string
(``"aliyun,backup"``, handy in an environment variable). A name other than ``aliyun``,
``console`` or a dotted path is looked up in ``SMSCODE_SENDERS_CONFIG``::

    SMSCODE_SENDERS_CONFIG = {"backup": {
        "SMSCODE_SENDER": "aliyun",                 # the kind; "aliyun" when left out
        "SMSCODE_ALIYUN_ACCESS_KEY_ID": "...",      # any SMSCODE_* key: overrides the
        "SMSCODE_ALIYUN_ACCESS_KEY_SECRET": "...",  # app's value for this sender only
        "SMSCODE_ALIYUN_SIGN_NAME": "...",
        "SMSCODE_ALIYUN_ENDPOINT": "dysmsapi.ap-southeast-1.aliyuncs.com",
    }}

Each entry is laid over the app's config, so a backup account repeats only what differs.
Every mistake fails at start-up naming the key.
"""

from __future__ import annotations

import re
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import SETTINGS, get_setting
from ..errors import ConfigurationError

BUILTIN = ("aliyun", "console")
# A named sender becomes a metric label and a log field: short, and never a dotted path.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,31}")
# Keys an entry may not set: they describe the list, not one sender of it.
_NOT_PER_SENDER = ("SMSCODE_SENDERS_CONFIG",)


@dataclass(frozen=True)
class SenderSpec:
    """One sender of the list: its name (logs, metrics, status), what to build (a name,
    dotted path, class or instance) and the config it is built from."""

    name: str
    kind: Any
    config: Mapping[str, Any]
    named: bool = False  # defined in SMSCODE_SENDERS_CONFIG


def sender_specs(config: Mapping[str, Any]) -> list[SenderSpec]:
    """The senders ``SMSCODE_SENDER`` names, in order, each with its own config view."""
    value = get_setting(config, "SMSCODE_SENDER")
    entries = _entries(config)
    if isinstance(value, str):
        items: list[Any] = [part.strip() for part in value.split(",")]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]  # a class or an instance, as before
    if not items or any(item is None or item == "" for item in items):
        raise ConfigurationError(
            f"SMSCODE_SENDER must name at least one sender, with no empty entries; got {value!r}."
        )
    specs = []
    for item in items:
        if isinstance(item, str) and item in entries:
            entry = entries[item]
            # The entry's keys over the app's: a backup repeats only what differs.
            view: Mapping[str, Any] = ChainMap(
                {k: v for k, v in entry.items() if k != "SMSCODE_SENDER"}, dict(config)
            )
            specs.append(
                SenderSpec(item, entry.get("SMSCODE_SENDER") or "aliyun", view, named=True)
            )
        elif isinstance(item, str):
            if item not in BUILTIN and "." not in item:
                raise ConfigurationError(
                    f"SMSCODE_SENDER: {item!r} is not 'aliyun', 'console', a dotted path to "
                    "a sender class, or a name defined in SMSCODE_SENDERS_CONFIG."
                )
            specs.append(SenderSpec(item, item, config))
        else:
            label = getattr(item, "name", None)
            if not isinstance(label, str) or not _NAME.fullmatch(label):
                label = item.__name__ if isinstance(item, type) else type(item).__name__
            specs.append(SenderSpec(label, item, config))
    names = [spec.name for spec in specs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigurationError(
            f"SMSCODE_SENDER names {', '.join(map(repr, twice))} more "
            "than once; a second account needs its own name in "
            "SMSCODE_SENDERS_CONFIG."
        )
    return specs


def _entries(config: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """``SMSCODE_SENDERS_CONFIG``, checked: names, keys and kinds."""
    raw = get_setting(config, "SMSCODE_SENDERS_CONFIG")
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            "SMSCODE_SENDERS_CONFIG must be a dict of sender name -> dict of SMSCODE_* overrides."
        )
    entries: dict[str, Mapping[str, Any]] = {}
    for name, entry in raw.items():
        where = f"SMSCODE_SENDERS_CONFIG[{name!r}]"
        if not isinstance(name, str) or not _NAME.fullmatch(name) or name in BUILTIN:
            raise ConfigurationError(
                f"{where}: a sender name is 1-32 letters, digits, '_' "
                "or '-', starting with a letter, and not 'aliyun' or "
                "'console'."
            )
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{where} must be a dict of SMSCODE_* keys.")
        for key in entry:
            if key not in SETTINGS or key in _NOT_PER_SENDER:
                raise ConfigurationError(
                    f"{where}: {key!r} is not a SMSCODE_* setting a sender can override."
                )
        kind = entry.get("SMSCODE_SENDER")
        if kind is not None and not (
            isinstance(kind, type) or (isinstance(kind, str) and (kind in BUILTIN or "." in kind))
        ):
            raise ConfigurationError(
                f"{where}['SMSCODE_SENDER'] must be 'aliyun', "
                "'console', a dotted path or a class (one sender)."
            )
        entries[name] = entry
    return entries
