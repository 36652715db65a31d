"""HMAC helpers shared by the webhook verifiers and the ``webhooks send`` signer."""

from __future__ import annotations

import base64
import hashlib
import hmac


def hmac_sha256(secret: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(secret, message, hashlib.sha256).digest()


def hmac_sha256_base64(secret: bytes, message: bytes) -> str:
    """HMAC-SHA256, base64 encoded (Shopify, WooCommerce, Square, Xero)."""
    return base64.b64encode(hmac_sha256(secret, message)).decode("ascii")


def same_text(given: str, expected: str) -> bool:
    """Constant-time comparison of two signatures in text form."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("ascii"))
