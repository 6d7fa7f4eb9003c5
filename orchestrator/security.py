"""Secrets: API tokens and web-session ids (stored as sha256) and passwords (argon2id).

Passwords hashed by older releases with scrypt still verify, and are re-hashed with argon2id at
the next successful sign-in (`needs_rehash`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

TOKEN_PREFIX = "fd_"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when the e-mail is unknown, so a miss costs as long as a hit and does not reveal it.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens are long and random, so one fast hash is enough and lookups stay indexed.
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    if not stored:
        _verify_argon2(password, _DUMMY_HASH)
        return False
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    return _verify_argon2(password, stored)


def needs_rehash(stored: str) -> bool:
    if stored.startswith("scrypt$"):
        return True
    try:
        return _hasher.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_argon2(password: str, stored: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _verify_scrypt(password: str, stored: str) -> bool:
    try:
        _, salt_hex, digest_hex = stored.split("$")
        digest = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt_hex), n=2**14, r=8, p=1)
    except ValueError:
        return False
    return hmac.compare_digest(digest.hex(), digest_hex)
