"""The keys that sign audit anchors, and the check of the signatures on one anchor record.

Two schemes, either or both (docs/audit.md):

- HMAC-SHA256 under FRONTDESK_AUDIT_ANCHOR_KEY (`key_id`, `sig`): a shared secret, so whoever can
  check an anchor can also make one; it serves the operator's own `frontdesk audit verify`.
- Ed25519 under the private key in FRONTDESK_AUDIT_ANCHOR_SIGNING_KEY_FILE (`ed25519_key_id`,
  `ed25519_sig`): whoever holds the public key (`frontdesk audit public-key`) checks an anchor and
  cannot make one, so a third party verifies an evidence bundle without any secret.

The Ed25519 signature covers the record less both signatures; the HMAC covers the record less
`sig`, the Ed25519 signature included. Records written before Ed25519 carry no `ed25519_*` field
and check by their HMAC as before. Pure (no settings, no database): the offline bundle check uses
it. The private key is never logged, printed or put in a record; only its public half is.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ED_KEY_ID, ED_SIG = "ed25519_key_id", "ed25519_sig"


def key_id(key: bytes) -> str:
    """Names the HMAC key in each record (so a rotated key is told from a forged line); not the key."""
    return hashlib.sha256(b"frontdesk-anchor-key|" + key).hexdigest()[:12]


def public_raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_id(public: Ed25519PublicKey) -> str:
    """Names the Ed25519 key in each record: the first 16 hex digits of sha256(raw public key)."""
    return hashlib.sha256(public_raw(public)).hexdigest()[:16]


def public_text(public: Ed25519PublicKey) -> str:
    """The form `frontdesk audit public-key` prints and operators publish: base64 of the 32 raw bytes."""
    return base64.b64encode(public_raw(public)).decode()


@dataclass(frozen=True)
class Keys:
    """What signs (or checks) anchors: an HMAC key, an Ed25519 private key, or a public key alone."""

    hmac: bytes | None = field(default=None, repr=False)
    signer: Ed25519PrivateKey | None = field(default=None, repr=False)
    public: Ed25519PublicKey | None = None

    def __post_init__(self) -> None:
        if self.signer is not None and self.public is None:
            object.__setattr__(self, "public", self.signer.public_key())

    @classmethod
    def of(cls, keys: bytes | Keys | None) -> Keys:
        """Keys as given; bytes are an HMAC key (what callers passed before Ed25519)."""
        return keys if isinstance(keys, Keys) else cls(hmac=keys or None)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The Ed25519 private key in a PEM file; ValueError names the file and what is wrong, never its content."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"the anchor signing key file {path} cannot be read: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise ValueError(
            f"the anchor signing key file {path} does not hold an unencrypted PEM private key "
            "(make one with `frontdesk audit keygen --out FILE`)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"the anchor signing key file {path} holds a key that is not Ed25519")
    return key


def write_private_key(path: str | Path) -> Ed25519PrivateKey:
    """A new Ed25519 private key in a new PEM file of mode 0600 (an existing file is never replaced)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


def load_public_key(file_or_value: str) -> Ed25519PublicKey:
    """A public key given as a file or as the value itself: base64 of the raw 32 bytes (what
    `frontdesk audit public-key` prints) or a PEM public key. A private key is refused."""
    text = file_or_value.strip()
    if not text.startswith("-----") and Path(file_or_value).is_file():
        text = Path(file_or_value).read_text().strip()
    if text.startswith("-----"):
        if "PRIVATE KEY" in text.split("\n", 1)[0]:
            raise ValueError("that is a private key: give the public key (`frontdesk audit public-key`)")
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError("the PEM text is not a public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the public key is not an Ed25519 key")
        return key
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{file_or_value!r} is neither a file nor a base64 or PEM public key") from None
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes; this one is {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _body(record: dict[str, Any], *without: str) -> bytes:
    kept = {k: v for k, v in record.items() if k not in without}
    return json.dumps(kept, sort_keys=True, separators=(",", ":")).encode()


def sign_record(record: dict[str, Any], keys: Keys) -> dict[str, Any]:
    """Add the key ids and signatures of the keys there are (Ed25519 first, then the HMAC over it)."""
    if keys.hmac is None and keys.signer is None:
        raise ValueError("no key to sign the anchor with")
    if keys.hmac is not None:
        record["key_id"] = key_id(keys.hmac)
    if keys.signer is not None and keys.public is not None:
        record[ED_KEY_ID] = public_key_id(keys.public)
        record[ED_SIG] = base64.b64encode(keys.signer.sign(_body(record, "sig", ED_SIG))).decode()
    if keys.hmac is not None:
        record["sig"] = hmac.new(keys.hmac, _body(record, "sig"), hashlib.sha256).hexdigest()
    return record


def check_record(record: dict[str, Any], keys: Keys) -> tuple[str, list[str]]:
    """("", what checked) when each given key's signature that the record carries checks, and at
    least one does; else (why not, []). A record without an Ed25519 signature checks by its HMAC
    (older records); with only a public key given, it does not check."""
    checked: list[str] = []
    if keys.hmac is not None and ("sig" in record or keys.public is None):
        if "sig" not in record:
            return "has no HMAC signature", []
        if record.get("key_id") != key_id(keys.hmac):
            return f"was signed with another key ({record.get('key_id')})", []
        expected = hmac.new(keys.hmac, _body(record, "sig"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, str(record.get("sig", ""))):
            return "has a bad signature", []
        checked.append(f"HMAC (key {record['key_id']})")
    if keys.public is not None and (ED_SIG in record or not checked):
        if ED_SIG not in record:
            return "has no Ed25519 signature", []
        if record.get(ED_KEY_ID) != public_key_id(keys.public):
            return f"was signed with another Ed25519 key ({record.get(ED_KEY_ID)})", []
        try:
            signature = base64.b64decode(str(record[ED_SIG]), validate=True)
            keys.public.verify(signature, _body(record, "sig", ED_SIG))
        except (InvalidSignature, binascii.Error, ValueError):
            return "has a bad Ed25519 signature", []
        checked.append(f"Ed25519 (key {record[ED_KEY_ID]})")
    if not checked:
        return "cannot be checked: no key given", []
    return "", checked
