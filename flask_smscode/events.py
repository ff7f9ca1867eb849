"""One structured log line, and one count, per send and verify outcome.

Levels follow what an operator acts on: the provider failing is WARNING, attacks being
throttled and users mistyping are INFO. Each line is ``key=value`` text (readable in a
terminal, parseable by log shippers) and the same fields are attached as
``record.smscode`` for JSON formatters. Phones are masked before they get here; codes
never do.
"""

from __future__ import annotations

import logging
from typing import Any

from .metrics import STATS

logger = logging.getLogger("flask_smscode")


def log_event(level: int, event: str, **fields: Any) -> None:
    if event == "send":
        STATS.send(str(fields.get("purpose")), str(fields.get("outcome")))
    elif event == "verify":
        STATS.verify(str(fields.get("purpose")), str(fields.get("outcome")))
    fields = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    text = " ".join(f"{key}={_quote(value)}" for key, value in fields.items())
    logger.log(level, "smscode %s", text, extra={"smscode": fields})


def _quote(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text
