"""Accounts of the demo site in SQLite (standard library), so they survive a restart.

One small table, phone (E.164) → display name. Each call opens its own connection: SQLite
connections are cheap and must not be shared between the server's threads.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    phone TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class Account:
    phone: str
    name: str
    created_at: datetime


class Accounts:
    """The accounts table in the SQLite file at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute(SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=5)

    def get(self, phone: str) -> Account | None:
        db = self._connect()
        try:
            row = db.execute(
                "SELECT phone, name, created_at FROM accounts WHERE phone = ?", (phone,)
            ).fetchone()
        finally:
            db.close()
        if row is None:
            return None
        return Account(row[0], row[1], datetime.fromisoformat(row[2]))

    def create(self, phone: str, name: str) -> Account | None:
        """The new account, or ``None`` when the phone already has one (one INSERT: two
        signups for one phone cannot both win)."""
        account = Account(phone, name, datetime.now(timezone.utc).replace(microsecond=0))
        db = self._connect()
        try:
            with db:
                inserted = db.execute(
                    "INSERT INTO accounts (phone, name, created_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (phone) DO NOTHING",
                    (account.phone, account.name, account.created_at.isoformat()),
                ).rowcount
        finally:
            db.close()
        return account if inserted == 1 else None

    def count(self) -> int:
        db = self._connect()
        try:
            return int(db.execute("SELECT COUNT(*) FROM accounts").fetchone()[0])
        finally:
            db.close()
