"""Sealing secrets at rest: AES-256-GCM under a 32-byte key, with the key's id in the clear.

A sealed value is one ASCII line::

    ledgerhub-sealed:v1:<key id>:<base64url(nonce ‖ ciphertext ‖ tag)>

``<key id>`` is 8 hex digits derived from the key (a SHA-256 of it under a fixed label, so it
tells keys apart without revealing them): a reader knows which key sealed a value before trying
to open it, so ``secrets rotate`` can tell data under the old key from data under the new one,
and a wrong key is reported as such rather than as damage. The nonce is 12 random bytes per
seal; the header (``ledgerhub-sealed:v1:<key id>``) is authenticated as associated data, so
changing any byte of the line (header included) makes ``unseal`` refuse it (``TamperedError``).

Pure: no files, no environment (``hub.spi.sealed`` reads keys and files).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hub.errors import ConfigError

KEY_BYTES = 32
"""A secret key is 32 random bytes (AES-256)."""
PREFIX = b"ledgerhub-sealed:v1:"
"""How every sealed value starts (a plain refresh token never does)."""
_NONCE = 12
_TAG = 16


class SealError(ConfigError):
    """Sealed data cannot be opened: an operator has to act (the message says how)."""


class WrongKeyError(SealError):
    """The data was sealed under another key than the one given (or none is configured)."""


class TamperedError(SealError):
    """The data is malformed or fails authentication: changed, truncated or corrupted."""


class SecretKey:
    """A 32-byte sealing key; its ``key_id`` may be shown, the key itself never is."""

    __slots__ = ("_key", "key_id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ConfigError(f"a secret key is {KEY_BYTES} bytes, this one is {len(key)}")
        self._key = key
        self.key_id = hashlib.sha256(b"ledgerhub secret key id\0" + key).hexdigest()[:8]

    @classmethod
    def generate(cls) -> SecretKey:
        """A new random key (``os.urandom``)."""
        return cls(os.urandom(KEY_BYTES))

    @classmethod
    def parse(cls, text: str) -> SecretKey:
        """The key written as base64 (standard or URL-safe alphabet, surrounding blanks
        ignored); ``ConfigError`` saying what is wrong, never echoing the text."""
        cleaned = text.strip()
        try:
            raw = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("a secret key is 32 random bytes written as base64") from None
        if len(raw) != KEY_BYTES:
            raise ConfigError(
                f"a secret key is {KEY_BYTES} random bytes written as base64 "
                f"(this one decodes to {len(raw)})"
            )
        return cls(raw)

    def encoded(self) -> str:
        """The key as base64 (what ``LEDGERHUB_SECRET_KEY`` holds)."""
        return base64.b64encode(self._key).decode()

    def __repr__(self) -> str:
        return f"SecretKey(id={self.key_id})"  # never the key itself

    def seal(self, plain: bytes) -> bytes:
        """``plain`` sealed under this key (one line, no newline)."""
        header = PREFIX + self.key_id.encode()
        nonce = os.urandom(_NONCE)
        sealed = AESGCM(self._key).encrypt(nonce, plain, header)
        return header + b":" + base64.urlsafe_b64encode(nonce + sealed)

    def unseal(self, data: bytes) -> bytes:
        """The plain bytes of ``data`` (surrounding blanks ignored); ``WrongKeyError`` when
        another key sealed it, ``TamperedError`` when it is malformed or fails
        authentication."""
        found = sealed_key_id(data)
        if found != self.key_id:
            raise WrongKeyError(
                f"sealed under key {found}, but the configured key is {self.key_id}"
            )
        header, _, body = data.strip().rpartition(b":")
        try:
            raw = base64.urlsafe_b64decode(body)
        except (binascii.Error, ValueError):
            raise TamperedError("sealed data is malformed (tampered with or truncated)") from None
        if len(raw) < _NONCE + _TAG:
            raise TamperedError("sealed data is malformed (tampered with or truncated)")
        try:
            return AESGCM(self._key).decrypt(raw[:_NONCE], raw[_NONCE:], header)
        except InvalidTag:
            raise TamperedError(
                "sealed data fails authentication (tampered with or corrupted)"
            ) from None


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` is a sealed value (else it is plain text)."""
    return data.lstrip().startswith(PREFIX)


def sealed_key_id(data: bytes) -> str:
    """The id of the key that sealed ``data``; ``TamperedError`` if it is not a well-formed
    sealed value."""
    stripped = data.strip()
    if not stripped.startswith(PREFIX):
        raise TamperedError("not sealed data")
    key_id, colon, _ = stripped[len(PREFIX) :].partition(b":")
    if not colon or len(key_id) != 8 or not all(c in b"0123456789abcdef" for c in key_id):
        raise TamperedError("sealed data is malformed (tampered with or truncated)")
    return key_id.decode()
