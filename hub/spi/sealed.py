"""Secret files at rest (refresh tokens a target rewrites): sealed under
``LEDGERHUB_SECRET_KEY`` when one is configured (``hub.domain.sealing``: AES-256-GCM).

``LEDGERHUB_SECRET_KEY`` is ``env:NAME``, ``file:PATH`` or the key itself: 32 random bytes as
base64 (``ledgerhub secrets keygen`` prints one). A ``SealedFile``:

- takes plain text the operator wrote once, and seals it in place (temporary file, mode 0600,
  fsync, rename, fsync of the folder) as soon as the target opens or first reads it, so the
  plain token leaves the disk at the start;
- writes every new value sealed, atomically the same way;
- refuses sealed data it cannot open with a ``ConfigError`` naming the file and why (no key
  configured, another key, damaged), never the secret.

Without a key it keeps plain text as before, and the process logs one warning saying so.
Targets get one from ``TargetEnvironment.sealed_file`` (which also lists it for
``ledgerhub secrets rotate``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from hub.domain.sealing import SealError, SecretKey, is_sealed, sealed_key_id
from hub.errors import ConfigError

log = logging.getLogger(__name__)

KEY_VARIABLE = "LEDGERHUB_SECRET_KEY"
_warned = False


def read_key(ref: str, *, what: str = KEY_VARIABLE) -> SecretKey:
    """The key ``ref`` gives (``env:NAME``, ``file:PATH`` or the base64 itself);
    ``ConfigError`` starting with ``what`` when it cannot be read or is not a key."""
    from hub.config import resolve_secret  # hub.config imports this package: load it late

    try:
        text = resolve_secret(ref).decode() if ref.startswith(("env:", "file:")) else ref
        return SecretKey.parse(text)
    except UnicodeDecodeError:
        raise ConfigError(f"{what}: a secret key is 32 random bytes written as base64") from None
    except ConfigError as exc:
        raise ConfigError(f"{what}: {exc}") from exc


def key_from_env(environ: Mapping[str, str] | None = None) -> SecretKey | None:
    """The key ``LEDGERHUB_SECRET_KEY`` names in ``environ`` (default: the process
    environment), or None when it is unset or empty."""
    ref = (os.environ if environ is None else environ).get(KEY_VARIABLE, "")
    return read_key(ref) if ref.strip() else None


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a temporary file in its folder (mode 0600), fsync,
    rename, fsync of the folder."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # a folder some systems will not open for fsync
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


class SealedFile:
    """One secret file (a refresh token), sealed under ``key`` (None: kept plain)."""

    def __init__(self, path: Path, key: SecretKey | None) -> None:
        self.path = path
        self.key = key

    @classmethod
    def from_env(cls, path: Path) -> SealedFile:
        """``path`` under the key ``LEDGERHUB_SECRET_KEY`` gives (plain when unset)."""
        return cls(path, key_from_env())

    def __repr__(self) -> str:
        key = "plain" if self.key is None else f"key {self.key.key_id}"
        return f"SealedFile({self.path}, {key})"  # never the contents

    def check_and_seal(self) -> None:
        """What ``read`` does, now, without returning the secret: ``ConfigError`` if the file
        holds sealed data this key cannot open (sealed while no key is configured, under
        another key, or damaged), and plain text sealed in place when a key is configured.
        Nothing for a file that cannot be read (the target reports that when it needs it)."""
        if os.access(self.path, os.R_OK):
            self.read()

    def read(self) -> str:
        """The file's text (blanks around it dropped); plain text is sealed in place first
        when a key is configured. ``ConfigError`` naming the file when it cannot be read or
        opened."""
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{self.path}: {exc.strerror}") from exc
        if is_sealed(data):
            return self._opened(data)
        try:
            text = data.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise ConfigError(f"{self.path}: neither plain UTF-8 text nor sealed data") from None
        if self.key is None:
            _warn_plain()
        else:
            try:
                self.write(text)
            except OSError as exc:
                raise ConfigError(f"{self.path}: cannot seal it in place: {exc.strerror}") from exc
            log.info("sealed the plain-text file %s under key %s", self.path, self.key.key_id)
        return text

    def write(self, text: str) -> None:
        """Replace the file's contents with ``text``, sealed when a key is configured."""
        plain = text.encode("utf-8")
        if self.key is None:
            _warn_plain()
            write_atomic(self.path, plain)
        else:
            write_atomic(self.path, self.key.seal(plain) + b"\n")

    def _opened(self, data: bytes) -> str:
        if self.key is None:
            try:
                which = f"key {sealed_key_id(data)}"
            except SealError:
                which = "a key"
            raise ConfigError(f"{self.path} is sealed under {which}, but {KEY_VARIABLE} is not set")
        try:
            return self.key.unseal(data).decode("utf-8").strip()
        except SealError as exc:
            raise ConfigError(f"{self.path}: {exc}") from exc
        except UnicodeDecodeError:
            raise ConfigError(f"{self.path}: sealed data is not UTF-8 text") from None


def _warn_plain() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "%s is not set: refresh-token files are kept in plain text "
            "(README, Secrets at rest: how to make a key and seal them)",
            KEY_VARIABLE,
        )
