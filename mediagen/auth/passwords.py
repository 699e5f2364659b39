"""Passwords: hashing (argon2id) and the policy a new one must pass, wherever one is set.

Checked when a password is set (`mediagen users create`, a change on the account page or
`POST /api/me/password`, an admin reset), never at sign-in: a user whose older password is shorter
can still sign in, and is asked for a policy-fit one only when changing it.

Strength is zxcvbn's estimate (the Python port of Dropbox's estimator, with its frequency lists of
common passwords, words and names): a score of at least 3 of 4, i.e. about 10^8 guesses or more.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 takes any length; this only keeps a posted megabyte from being hashed
MIN_SCORE = 3  # zxcvbn: 3 is "safely unguessable: moderate protection from offline slow-hash attacks"
# zxcvbn refuses longer input (its matching is quadratic); the first 72 characters are scored, and
# a longer password is at least as strong as its start.
SCORED_LENGTH = 72
# The shortest part of an email's name that a password may not contain ("al" in "albatross" is fine).
MIN_NAME_PART = 3

# zxcvbn keeps the user inputs of the call in progress in a module-level dictionary.
_zxcvbn_lock = threading.Lock()

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_for_nobody(password: str) -> None:
    """Spends the time of a real check when an email names no user, so timing does not tell."""
    verify_password(_dummy_hash(), password)


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown emails; made on first use, not at import."""
    return _hasher.hash(secrets.token_hex(8))


def _name_parts(email: str) -> list[str]:
    """The email's local part and its pieces: `jane.doe+work@x` -> jane.doe+work, jane, doe, work."""
    local = email.strip().lower().split("@", 1)[0]
    parts = [local, *re.split(r"[._+\-]+", local)]
    return [p for p in dict.fromkeys(parts) if len(p) >= MIN_NAME_PART]


def is_common(password: str) -> bool:
    """In zxcvbn's list of the 30,000 most common passwords (case-insensitively)."""
    from zxcvbn.matching import RANKED_DICTIONARIES

    return password.lower() in RANKED_DICTIONARIES["passwords"]


def password_problem(password: str, *, email: str) -> str | None:
    """Why `password` may not be set for the user with `email`, or None when it may.

    The reason reads beside the password field ("Must be at least 10 characters")."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if not password.strip():
        return "must not be only spaces"
    if is_common(password):
        return "is one of the most common passwords; choose another"
    lowered = password.lower()
    for part in _name_parts(email):
        if part in lowered:
            return "must not contain your email address's name"
    from zxcvbn import zxcvbn

    with _zxcvbn_lock:
        result = zxcvbn(password[:SCORED_LENGTH], user_inputs=[email, *_name_parts(email), "mediagen"])
    if result["score"] < MIN_SCORE:
        feedback = result["feedback"]
        hint = " ".join(s for s in [feedback["warning"], *feedback["suggestions"]] if s)
        return "is too easy to guess" + (f": {hint}" if hint else "; add another word or two")
    return None


def generate_password() -> str:
    """A random password for a first admin or an admin reset: 16 bytes from `secrets` (22 characters)."""
    return secrets.token_urlsafe(16)
