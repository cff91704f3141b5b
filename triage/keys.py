"""API keys: named, with a role (:data:`triage.vocab.ROLES`) and an optional expiry, kept in the
database as the sha256 of the key only.

A key is ``tk_`` followed by 43 URL-safe characters (32 random bytes). It is shown once, when
it is created; afterwards only its first characters (``prefix``) identify it in listings. A key
carries 256 bits of randomness, so a plain sha256 is enough to store it: there is nothing to
guess, unlike a password.
"""
from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from triage import schema
from triage.db import open_engine, writing
from triage.errors import InputError
from triage.vocab import ROLES

KEY_PREFIX = "tk_"
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's name and role (``kind`` says how they were identified)."""
    name: str
    role: str
    kind: str = "key"


def key_sha256(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def _aware(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=timezone.utc) if dt is not None and dt.tzinfo is None else dt


class KeyStore:
    def __init__(self, url: str) -> None:
        self.engine = open_engine(url)
        self.table = schema.api_keys

    def create(self, name: str, role: str, expires_at: datetime | None = None) -> str:
        """Make a key and return it (the only time it is readable). A name is unique, also
        among revoked keys, so the audit trail of who did what stays unambiguous."""
        from sqlalchemy import insert, select

        if not NAME.match(name or ""):
            raise InputError("KEY_NAME", f"a key name is 1-100 letters, digits or . _ @ -, starting with a letter "
                             f"or digit; got {name!r}")
        if role not in ROLES:
            raise InputError("KEY_ROLE", f"role must be one of {list(ROLES)}, got {role!r}")
        if expires_at is not None and _aware(expires_at) <= datetime.now(timezone.utc):
            raise InputError("KEY_EXPIRY", f"the expiry {expires_at.isoformat()} is in the past")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        with writing(self.engine) as conn:
            if conn.execute(select(self.table.c.name).where(self.table.c.name == name)).first():
                raise InputError("KEY_EXISTS", f"a key named {name!r} exists (revoked keys keep their name)")
            conn.execute(insert(self.table).values(name=name, role=role, key_sha256=key_sha256(key),
                                                   prefix=key[:10], created_at=datetime.now(timezone.utc),
                                                   expires_at=_aware(expires_at)))
        return key

    def list(self) -> list[dict]:
        from sqlalchemy import select
        t = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(select(t.c.name, t.c.role, t.c.prefix, t.c.created_at, t.c.expires_at,
                                       t.c.revoked_at).order_by(t.c.name)).mappings().all()
        now = datetime.now(timezone.utc)
        out = []
        for r in rows:
            expires, revoked = _aware(r["expires_at"]), _aware(r["revoked_at"])
            state = "revoked" if revoked else "expired" if expires is not None and expires <= now else "active"
            out.append({"name": r["name"], "role": r["role"], "prefix": r["prefix"], "state": state,
                        **{k: _aware(r[k]).isoformat() if r[k] else None
                           for k in ("created_at", "expires_at", "revoked_at")}})
        return out

    def revoke(self, name: str) -> bool:
        """Revoke a key by name; False when there is no active key of that name."""
        from sqlalchemy import update
        t = self.table
        with writing(self.engine) as conn:
            return conn.execute(update(t).where(t.c.name == name, t.c.revoked_at.is_(None))
                                .values(revoked_at=datetime.now(timezone.utc))).rowcount > 0

    def active_count(self) -> int:
        from sqlalchemy import func, or_, select
        t = self.table
        now = datetime.now(timezone.utc)
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(t).where(
                t.c.revoked_at.is_(None), or_(t.c.expires_at.is_(None), t.c.expires_at > now))).scalar_one())

    def verify(self, key: str) -> Principal | None:
        """The principal of an active key; None for an unknown, revoked or expired one."""
        from sqlalchemy import select
        t = self.table
        with self.engine.connect() as conn:
            row = conn.execute(select(t.c.name, t.c.role, t.c.expires_at, t.c.revoked_at)
                               .where(t.c.key_sha256 == key_sha256(key))).first()
        if row is None or row.revoked_at is not None:
            return None
        if row.expires_at is not None and _aware(row.expires_at) <= datetime.now(timezone.utc):
            return None
        return Principal(row.name, row.role)
