"""``ledgerhub secrets keygen|rotate``: the key secret files are sealed under at rest
(``LEDGERHUB_SECRET_KEY``; ``hub.spi.sealed``)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hub.config import Settings, load
from hub.domain.sealing import SealError, SecretKey, is_sealed, sealed_key_id
from hub.errors import ConfigError
from hub.spi.sealed import KEY_VARIABLE, key_from_env, read_key, write_atomic
from hub.sync.tenants import secret_files


def _reference(text: str) -> str:
    if not text.startswith(("env:", "file:")) or len(text) <= len("env:"):
        raise argparse.ArgumentTypeError(
            "write env:NAME or file:PATH (a key on the command line would show in ps)"
        )
    return text


def register(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "secrets", help="make the key secret files are sealed under, and rotate it"
    )
    actions = parser.add_subparsers(
        dest="action", required=True, metavar="ACTION", parser_class=type(parser)
    )
    keygen = actions.add_parser(
        "keygen", help=f"print a new key for {KEY_VARIABLE} (32 random bytes, base64; last line)"
    )
    keygen.set_defaults(run=run_keygen)
    rotate = actions.add_parser(
        "rotate",
        help=f"re-seal every secret file under a new key (then set {KEY_VARIABLE} to it)",
    )
    rotate.add_argument(
        "--new-key",
        required=True,
        metavar="env:NAME|file:PATH",
        type=_reference,
        help="where the new key is (ledgerhub secrets keygen makes one)",
    )
    rotate.set_defaults(run=run_rotate)


async def run_keygen(args: argparse.Namespace) -> int:
    key = SecretKey.generate()
    print(f"a new key (id {key.key_id}): set {KEY_VARIABLE} to it, as env:NAME or file:PATH")
    print("store it now: it is not shown again")
    print(key.encoded(), flush=True)
    return 0


def _reseal(path: Path, old: SecretKey | None, new: SecretKey) -> str:
    """Re-seal ``path`` under ``new``; what was done, or ``ConfigError`` why it could not be."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot be read: {exc.strerror}") from exc
    if not is_sealed(data):
        try:
            plain = data.decode("utf-8").strip().encode()
        except UnicodeDecodeError:
            raise ConfigError("neither plain UTF-8 text nor sealed data") from None
        write_atomic(path, new.seal(plain) + b"\n")
        return f"sealed (was plain text) under key {new.key_id}"
    found = sealed_key_id(data)
    if found == new.key_id:
        new.unseal(data)  # refuse a damaged file here too, before saying it is fine
        return f"already sealed under key {new.key_id}"
    if old is None or found != old.key_id:
        known = "not set" if old is None else f"key {old.key_id}"
        raise ConfigError(
            f"sealed under key {found}: neither the new key {new.key_id} "
            f"nor {KEY_VARIABLE} ({known})"
        )
    write_atomic(path, new.seal(old.unseal(data)) + b"\n")
    return f"re-sealed under key {new.key_id} (was {old.key_id})"


async def run_rotate(args: argparse.Namespace) -> int:
    new = read_key(args.new_key, what="--new-key")
    old = key_from_env()
    settings = Settings.from_env()
    config = load(settings)
    failed = done = 0
    for tenant, files in await secret_files(config, settings.home):
        if isinstance(files, ConfigError):
            print(f"tenants.{tenant}: not rotated: {files}")
            failed += 1
            continue
        for path in files:
            try:
                said = _reseal(path, old, new)
            except (SealError, ConfigError) as exc:
                print(f"tenants.{tenant}: {path}: not rotated: {exc}")
                failed += 1
                continue
            print(f"tenants.{tenant}: {path}: {said}")
            done += 1
    print(
        f"{done} secret file(s) sealed under key {new.key_id}, {failed} failed; "
        f"set {KEY_VARIABLE} to the new key before the next start"
    )
    return 1 if failed else 0
