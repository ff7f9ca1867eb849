"""One structured log line per send and verify outcome.

Each line is ``key=value`` text (readable in a terminal, parseable by log shippers) and
the same fields are attached as ``record.smscode`` for JSON formatters. Phones are masked
before they get here; codes never do.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("flask_smscode")


def log_event(level: int, event: str, **fields: Any) -> None:
    fields = {"event": event, **{k: v for k, v in fields.items() if v is not None}}
    text = " ".join(f"{key}={_quote(value)}" for key, value in fields.items())
    logger.log(level, "smscode %s", text, extra={"smscode": fields})


def _quote(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text
