"""Backend API keys: who a backend is, and what it may do.

A key reads `vk_<id>_<secret>`: the id finds its record, the secret (32 random bytes) is
stored only as its SHA-256 and compared in constant time. A high-entropy secret needs no
slow hash: nobody can search 2^256 inputs, whatever the hash costs.

Keys live in the `api_keys` table (`vibe keys create|list|revoke`, or the admin API), and
a deployment may also name keys in VIBE_API_KEYS, for the first key of a new deployment
(before anyone can call the admin API) and for fixed keys held in a secret store. Each
entry there is `<name>:<id>:<sha256 of the secret, hex>:<scope>+<scope>...`, as
`vibe keys create --settings` prints it; entries are separated by commas.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import asyncpg

from vibe.platform.errors import InvalidArgument, NotFound, Unauthenticated
from vibe.platform.validation import shown

KEY_PREFIX = "vk_"
_ID_RE = re.compile(r"[a-z0-9]{8,32}", re.ASCII)
# What new_key's secrets are made of (secrets.token_urlsafe): the shape of a presented
# secret is checked before it is hashed, so bytes that are no text (an HTTP header is
# read as UTF-8 with surrogate escapes) are a malformed key, not an encoding error (500).
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]{16,256}", re.ASCII)
_HEX_RE = re.compile(r"^[0-9a-f]{64}$")
_NAME_RE = re.compile(r"^[^:,\s][^:,]{0,99}$")
MAX_NAME_CHARS = 100


class Scope(StrEnum):
    SESSIONS_CREATE = "sessions:create"  # CreateSession
    REPORTS_READ = "reports:read"  # list sessions, transcripts, exports, full reports, release to the candidate
    ADMIN = "admin"  # create, list and revoke keys


ALL_SCOPES = frozenset(Scope)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime | None = None  # None: a key from the settings
    revoked_at: datetime | None = None
    from_settings: bool = False

    def describe(self) -> str:
        return f"{self.key_id} ({self.name})"


@dataclass(frozen=True)
class SettingsKey:
    key: ApiKey
    secret_hash: bytes


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def new_key() -> tuple[str, str, str]:
    """(key id, secret, the key as the backend sends it)."""
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{KEY_PREFIX}{key_id}_{secret}"


def looks_like_key(value: str) -> bool:
    return value.startswith(KEY_PREFIX)


def split_key(presented: str) -> tuple[str, str] | None:
    """(id, secret) of a key as sent, or None when it is not shaped like one."""
    if not presented.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = presented[len(KEY_PREFIX) :].partition("_")
    if not sep or not _ID_RE.fullmatch(key_id) or not _SECRET_RE.fullmatch(secret):
        return None
    return key_id, secret


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    scopes = set()
    for value in values:
        try:
            scopes.add(Scope(value.strip()))
        except ValueError:
            raise InvalidArgument(
                f"unknown scope {shown(value.strip())}; the scopes are: {', '.join(s.value for s in Scope)}"
            ) from None
    if not scopes:
        raise InvalidArgument(f"a key needs at least one scope: {', '.join(s.value for s in Scope)}")
    return frozenset(scopes)


def check_key_id(key_id: str) -> str:
    """A key id as an admin names it (`vibe keys list` shows them): 8-32 lowercase letters
    and digits. Anything else cannot be a key's, so it is malformed rather than unknown."""
    key_id = key_id.strip()
    if not key_id:
        raise InvalidArgument("key_id is required")
    if not _ID_RE.fullmatch(key_id):
        raise InvalidArgument(
            f"key_id {shown(key_id)} is malformed: a key id is 8-32 lowercase letters and digits, "
            "the part between 'vk_' and the second '_' of the key (`vibe keys list` shows them)"
        )
    return key_id


def check_name(name: str) -> str:
    name = name.strip()
    if not _NAME_RE.match(name):
        raise InvalidArgument(
            f"a key's name is 1 to {MAX_NAME_CHARS} characters without ':' or ',' (it names the backend that holds it)"
        )
    return name


def settings_entry(name: str, key_id: str, secret: str, scopes: Iterable[Scope]) -> str:
    """The VIBE_API_KEYS entry of a key: it holds the secret's hash, never the secret."""
    return f"{name}:{key_id}:{hash_secret(secret).hex()}:{'+'.join(sorted(s.value for s in scopes))}"


def parse_settings_keys(raw: str) -> tuple[tuple[SettingsKey, ...], list[str]]:
    """The keys of VIBE_API_KEYS, and what is wrong with it (entry by entry)."""
    keys: list[SettingsKey] = []
    errors: list[str] = []
    seen: set[str] = set()
    for n, entry in enumerate((e.strip() for e in raw.split(",")), start=1):
        if not entry:
            continue
        parts = entry.split(":", 3)
        if len(parts) != 4:
            errors.append(f"VIBE_API_KEYS entry {n} is not name:id:sha256-hex:scope+scope")
            continue
        name, key_id, digest, scope_list = parts
        problems = []
        if not _NAME_RE.match(name):
            problems.append("its name is empty or too long")
        if not _ID_RE.fullmatch(key_id):
            problems.append("its id is not 8-32 lowercase letters and digits")
        elif key_id in seen:
            problems.append(f"its id {key_id} is already used by another entry")
        if not _HEX_RE.match(digest):
            problems.append("its hash is not 64 lowercase hex digits (SHA-256 of the secret)")
        try:
            scopes = parse_scopes(scope_list.split("+"))
        except InvalidArgument as exc:
            problems.append(exc.message)
            scopes = frozenset()
        if problems:
            errors.append(f"VIBE_API_KEYS entry {n} ({name or '?'}): " + "; ".join(problems))
            continue
        seen.add(key_id)
        keys.append(SettingsKey(ApiKey(key_id, name, scopes, from_settings=True), bytes.fromhex(digest)))
    return tuple(keys), errors


_COLUMNS = "key_id, name, scopes, created_at, revoked_at"


def _key(row: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=row["key_id"],
        name=row["name"],
        scopes=frozenset(Scope(s) for s in row["scopes"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


class ApiKeyStore:
    """The `api_keys` table."""

    def __init__(self, db: asyncpg.Pool):
        self.db = db

    async def create(self, name: str, scopes: Iterable[Scope]) -> tuple[ApiKey, str]:
        """A new key and its plaintext, which is shown once and stored only as a hash."""
        key_id, secret, plaintext = new_key()
        row = await self.db.fetchrow(
            f"INSERT INTO api_keys (key_id, name, secret_hash, scopes) VALUES ($1, $2, $3, $4) RETURNING {_COLUMNS}",
            key_id,
            check_name(name),
            hash_secret(secret),
            sorted(s.value for s in scopes),
        )
        assert row is not None
        return _key(row), plaintext

    async def revoke(self, key_id: str) -> ApiKey:
        """Revokes the key (at once, for every later call); revoking again keeps the first time."""
        row = await self.db.fetchrow(
            f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE key_id = $1 RETURNING {_COLUMNS}",
            key_id,
        )
        if row is None:
            raise NotFound(f"no API key {key_id!r} in the api_keys table (keys from VIBE_API_KEYS are revoked there)")
        return _key(row)

    async def list_keys(self) -> list[ApiKey]:
        rows = await self.db.fetch(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id")
        return [_key(r) for r in rows]

    async def find(self, key_id: str) -> tuple[ApiKey, bytes] | None:
        row = await self.db.fetchrow(f"SELECT {_COLUMNS}, secret_hash FROM api_keys WHERE key_id = $1", key_id)
        return None if row is None else (_key(row), bytes(row["secret_hash"]))


_INVALID = "invalid API key: no key has this id and secret (check for a typo, or create one with `vibe keys create`)"


class KeyRing:
    """Every key a backend may present: the settings' and the table's."""

    def __init__(self, store: ApiKeyStore, settings_keys: Iterable[SettingsKey] = ()):
        self.store = store
        self.settings_keys = {k.key.key_id: k for k in settings_keys}

    async def authenticate(self, presented: str) -> ApiKey:
        """The key, if `presented` is a live one; else Unauthenticated. Looked up on every
        call, so a revocation applies to the next request."""
        parts = split_key(presented)
        if parts is None:
            raise Unauthenticated("malformed API key: a key reads vk_<id>_<secret>, as `vibe keys create` prints it")
        key_id, secret = parts
        digest = hash_secret(secret)
        from_settings = self.settings_keys.get(key_id)
        if from_settings is not None:
            if not hmac.compare_digest(from_settings.secret_hash, digest):
                raise Unauthenticated(_INVALID)
            return from_settings.key
        found = await self.store.find(key_id)
        # The comparison runs whether or not the id exists, so timing tells nothing either way.
        stored_hash = found[1] if found is not None else b"\0" * 32
        if not hmac.compare_digest(stored_hash, digest) or found is None:
            raise Unauthenticated(_INVALID)
        key = found[0]
        if key.revoked_at is not None:
            raise Unauthenticated(
                f"API key {key.describe()} was revoked at {key.revoked_at.isoformat()}; ask for a new one"
            )
        return key
