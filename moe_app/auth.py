"""Users and passwords for the web app: argon2id hashes in a JSON file outside the repository.

The users file (MOE_APP_USERS_FILE, default `users.json` in the data dir) maps a user name to
its role and argon2 hash. It is written atomically (temp file + rename) with mode 0600, so a
crash never leaves a half-written file and other local accounts cannot read the hashes.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from moe_app.errors import AuthError, ConfigError

ROLES: tuple[str, ...] = ("clinician", "reviewer", "admin")
DEMO_USER = "local-demo"  # the single user of loopback demo mode, named as such in the audit
_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{2,64}$")
MIN_PASSWORD_LENGTH = 10

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


@dataclass(frozen=True)
class User:
    name: str
    role: str


def _read(path: Path) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"The users file {path} cannot be read ({exc.__class__.__name__}).") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ConfigError(f"The users file {path} is not in the expected format.")
    return data


def _write(path: Path, data: dict[str, dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".users-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UserStore:
    """Add, remove, list and check users in one users file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def list(self) -> list[User]:
        return [User(name, rec.get("role", "clinician")) for name, rec in sorted(_read(self.path).items())]

    def has_users(self) -> bool:
        return bool(_read(self.path))

    def add(self, name: str, password: str, role: str = "clinician") -> User:
        if not _NAME_RE.match(name):
            raise AuthError("User names are 2-64 letters, digits, dots, dashes or underscores.")
        if name == DEMO_USER:
            raise AuthError(f"'{DEMO_USER}' is reserved for demo mode.")
        if role not in ROLES:
            raise AuthError(f"Role must be one of {', '.join(ROLES)}.")
        if len(password) < MIN_PASSWORD_LENGTH:
            raise AuthError(f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.")
        data = _read(self.path)
        if name in data:
            raise AuthError(f"User '{name}' already exists; remove it first to reset the password.")
        data[name] = {"role": role, "hash": _hasher.hash(password)}
        _write(self.path, data)
        return User(name, role)

    def remove(self, name: str) -> None:
        data = _read(self.path)
        if name not in data:
            raise AuthError(f"There is no user '{name}'.")
        del data[name]
        _write(self.path, data)

    def check(self, name: str, password: str) -> User | None:
        """Return the user when the password is right, else None (never says which part was wrong)."""
        rec = _read(self.path).get(name)
        if rec is None:
            # Spend the same time as a real check so user names cannot be probed by timing.
            with contextlib.suppress(VerificationError):
                _hasher.verify(_dummy_hash(), password)
            return None
        try:
            _hasher.verify(rec["hash"], password)
        except (VerificationError, InvalidHashError, KeyError):
            return None
        return User(name, rec.get("role", "clinician"))

    def role_of(self, name: str) -> str | None:
        rec = _read(self.path).get(name)
        return None if rec is None else rec.get("role", "clinician")


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown users (computed on first use, not at import)."""
    return _hasher.hash("not-a-real-password-used-for-timing")
