"""Secrets at rest: refresh-token files sealed under ``LEDGERHUB_SECRET_KEY`` (AES-256-GCM),
through the real Xero and QuickBooks plugins against their local fakes, and the ``secrets``
command (keygen, rotate) on real files."""

from __future__ import annotations

import base64
import logging
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest

from connectors.quickbooks import QuickBooksPlugin, QuickBooksSettings
from connectors.xero.target import XeroPlugin, XeroSettings
from hub.cli import main
from hub.config import load_config
from hub.domain.sealing import PREFIX, SecretKey, TamperedError, WrongKeyError
from hub.errors import ConfigError
from hub.spi.sealed import KEY_VARIABLE, SealedFile
from hub.spi.target import Target, TargetEnvironment
from hub.sync.tenants import open_targets
from hub.testing.target import default_books
from hub.testing.target import document as _document
from tests.accounting.fake_xero import FakeXero
from tests.accounting.fake_xero import serve as serve_xero
from tests.accounting.harness import XERO_SECRET_ENV
from tests.accounting.targets import CHART
from tests.quickbooks.fake_qbo import serve as serve_qbo
from tests.quickbooks.harness import REALM, SECRET_ENV, TOKEN_FILE, new_fake

CLIENT_SECRET = "client-secret-value-7c1e"
FIRST = "first-refresh-token-9d2a"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> SecretKey:
    """A fresh key, configured as ``LEDGERHUB_SECRET_KEY`` (its value)."""
    made = SecretKey.generate()
    monkeypatch.setenv(KEY_VARIABLE, made.encoded())
    monkeypatch.setenv(XERO_SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setenv(SECRET_ENV, CLIENT_SECRET)
    return made


def _sealed_text(path: Path, key: SecretKey) -> str:
    data = path.read_bytes()
    assert data.startswith(PREFIX)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    return key.unseal(data).decode()


def _assert_no_secret_logged(caplog: pytest.LogCaptureFixture, *secrets: str) -> None:
    leaked = [s for s in secrets if s and s in caplog.text]
    assert not leaked, "a secret reached the log"


@asynccontextmanager
async def _xero(tmp: Path, key: SecretKey | None) -> AsyncIterator[tuple[FakeXero, Target]]:
    """A fake Xero and the tenant's target opened by the real plugin, the token file plain."""
    (tmp / "xero-refresh-token").write_text(FIRST + "\n")
    fake = FakeXero(set(CHART), FIRST, "org-1")
    async with serve_xero(fake), aiohttp.ClientSession() as session:
        settings = XeroSettings.model_validate(
            {
                "tenant_id": "org-1",
                "client_id": "client",
                "client_secret": f"env:{XERO_SECRET_ENV}",
                "refresh_token_file": "xero-refresh-token",
                "api_url": f"{fake.url}/api.xro/2.0",
                "token_url": f"{fake.url}/connect/token",
            }
        )
        env = TargetEnvironment(default_books(), tmp, tmp, session, key)
        yield fake, XeroPlugin().open(settings, env)


async def test_a_plain_xero_token_is_sealed_on_first_use_and_every_rotation_is_sealed(
    tmp_path: Path, key: SecretKey, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "xero-refresh-token"
    async with _xero(tmp_path, key) as (fake, target):
        assert _sealed_text(path, key) == FIRST  # sealed as the target opened, before any call
        await target.create(_document("a", 100))
        assert fake.refreshes == 1
        seen = [FIRST, fake.refresh_token]
        assert FIRST.encode() not in path.read_bytes()
        assert fake.refresh_token.encode() not in path.read_bytes()
        assert _sealed_text(path, key) == fake.refresh_token
        fake.access_tokens.clear()  # Xero revoked the access token: refresh (and rotate) again
        await target.create(_document("b", 200))
        assert fake.refreshes == 2
        assert _sealed_text(path, key) == fake.refresh_token
        seen += [fake.refresh_token, *fake.access_tokens]
        assert len(await target.held()) == 2
    assert os.listdir(tmp_path) == ["xero-refresh-token"]  # no temporary file left behind
    _assert_no_secret_logged(caplog, *seen, CLIENT_SECRET, key.encoded())


async def test_quickbooks_tokens_are_sealed_end_to_end(
    tmp_path: Path,
    key: SecretKey,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv(SECRET_ENV, "secret")  # what the fake expects
    fake = new_fake()
    path = tmp_path / TOKEN_FILE
    path.write_text(fake.refresh_token)
    first = fake.refresh_token
    async with serve_qbo(fake), aiohttp.ClientSession() as session:
        settings = QuickBooksSettings.model_validate(
            {
                "realm_id": REALM,
                "client_id": "client",
                "client_secret": f"env:{SECRET_ENV}",
                "refresh_token_file": TOKEN_FILE,
                "api_url": f"{fake.url}/v3",
                "token_url": f"{fake.url}/oauth2/v1/tokens/bearer",
            }
        )
        env = TargetEnvironment(default_books(), tmp_path, tmp_path, session, key)
        target = QuickBooksPlugin().open(settings, env)
        assert [f.path for f in env.sealed_files] == [path]
        await target.create(_document("p", 100))
        assert first.encode() not in path.read_bytes()
        assert _sealed_text(path, key) == fake.refresh_token
        fake.access_tokens.clear()
        await target.create(_document("q", 200))
        assert _sealed_text(path, key) == fake.refresh_token
        seen = [first, fake.refresh_token, *fake.access_tokens]
    _assert_no_secret_logged(caplog, *seen, "secret", key.encoded())


async def test_without_a_key_tokens_stay_plain_with_one_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.delenv(KEY_VARIABLE, raising=False)
    monkeypatch.setenv(XERO_SECRET_ENV, CLIENT_SECRET)
    monkeypatch.setattr("hub.spi.sealed._warned", False)
    caplog.set_level(logging.DEBUG)
    async with _xero(tmp_path, None) as (fake, target):
        await target.create(_document("a", 100))
        fake.access_tokens.clear()
        await target.create(_document("b", 200))
        assert (tmp_path / "xero-refresh-token").read_text() == fake.refresh_token
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage().split(":")[0] for r in warnings] == [f"{KEY_VARIABLE} is not set"]


async def test_a_sealed_file_needs_its_key_to_start(tmp_path: Path, key: SecretKey) -> None:
    path = tmp_path / "xero-refresh-token"
    path.write_bytes(key.seal(FIRST.encode()))
    other = SecretKey.generate()
    async with aiohttp.ClientSession() as session:
        for wrong, says in ((None, "is not set"), (other, f"configured key is {other.key_id}")):
            env = TargetEnvironment(default_books(), tmp_path, tmp_path, session, wrong)
            with pytest.raises(ConfigError, match=f"sealed under key {key.key_id}.*{says}"):
                env.sealed_file(path)
        env = TargetEnvironment(default_books(), tmp_path, tmp_path, session, key)
        assert env.sealed_file(path).read() == FIRST


@pytest.mark.parametrize("damage", ["flip", "truncate", "header"])
def test_a_tampered_file_is_refused_with_a_clear_error(
    tmp_path: Path, key: SecretKey, damage: str
) -> None:
    path = tmp_path / "token"
    SealedFile(path, key).write(FIRST)
    data = bytearray(path.read_bytes().strip())
    if damage == "flip":
        data[-5] = ord("A") if data[-5] != ord("A") else ord("B")
    elif damage == "truncate":
        data = data[:-12]
    else:  # a forged key id: the header is authenticated too
        data[len(PREFIX)] = ord("0") if data[len(PREFIX)] != ord("0") else ord("1")
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=rf"{path}: .*(tampered|configured key)") as caught:
        SealedFile(path, key).read()
    assert FIRST not in str(caught.value)
    assert path.read_bytes() == bytes(data)  # refused, never overwritten


def test_sealing_round_trips_and_names_its_key() -> None:
    key, other = SecretKey.generate(), SecretKey.generate()
    sealed = key.seal(b"token")
    assert sealed.startswith(PREFIX + key.key_id.encode() + b":")
    assert b"token" not in sealed
    assert key.seal(b"token") != sealed  # a fresh nonce each time
    assert key.unseal(sealed) == b"token"
    with pytest.raises(WrongKeyError):
        other.unseal(sealed)
    with pytest.raises(TamperedError):
        key.unseal(sealed[:-4])
    assert key.key_id not in repr(other)
    assert key.encoded() not in repr(key)


def test_keygen_prints_32_random_bytes_base64(capsys: pytest.CaptureFixture[str]) -> None:
    printed = []
    for _ in range(2):
        assert main(["secrets", "keygen"]) == 0
        printed.append(capsys.readouterr().out.splitlines()[-1])
    assert all(len(base64.b64decode(line, validate=True)) == 32 for line in printed)
    assert printed[0] != printed[1]
    assert SecretKey.parse(printed[0]).encoded() == printed[0]


def _config(tmp: Path) -> Path:
    """A config with a Xero tenant and a QuickBooks tenant, their token files beside it."""
    path = tmp / "ledgerhub.toml"
    path.write_text(
        "[tenants.acme.sync]\n"
        'target = "xero"\nmode = "per_transaction"\ntenant_id = "org-1"\n'
        f'client_id = "client"\nclient_secret = "env:{XERO_SECRET_ENV}"\n'
        'refresh_token_file = "secrets/acme-xero"\n'
        "[tenants.books.sync]\n"
        f'target = "quickbooks"\nmode = "per_transaction"\nrealm_id = "{REALM}"\n'
        f'client_id = "client"\nclient_secret = "env:{SECRET_ENV}"\n'
        'refresh_token_file = "secrets/books-qbo"\n'
    )
    (tmp / "secrets").mkdir()
    return path


def test_rotate_reseals_every_token_file_under_the_new_key(
    tmp_path: Path,
    key: SecretKey,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("LEDGERHUB_CONFIG", str(_config(tmp_path)))
    monkeypatch.setenv("LEDGERHUB_HOME", str(tmp_path / "home"))
    xero, qbo = tmp_path / "secrets" / "acme-xero", tmp_path / "secrets" / "books-qbo"
    SealedFile(xero, key).write("xero-token-1")
    qbo.write_text("qbo-token-1\n")  # plain: written by the operator, never used yet
    new = SecretKey.generate()
    (tmp_path / "new.key").write_text(new.encoded() + "\n")

    assert main(["secrets", "rotate", "--new-key", f"file:{tmp_path / 'new.key'}"]) == 0
    out = capsys.readouterr().out
    assert f"tenants.acme: {xero}: re-sealed under key {new.key_id} (was {key.key_id})" in out
    assert f"tenants.books: {qbo}: sealed (was plain text) under key {new.key_id}" in out
    assert _sealed_text(xero, new) == "xero-token-1"
    assert _sealed_text(qbo, new) == "qbo-token-1"
    with pytest.raises(WrongKeyError):
        key.unseal(xero.read_bytes())  # the old key no longer opens it
    with pytest.raises(ConfigError, match=f"sealed under key {new.key_id}"):
        SealedFile(xero, key).read()

    # run again (the new key configured now): nothing left to do
    monkeypatch.setenv(KEY_VARIABLE, f"file:{tmp_path / 'new.key'}")
    assert main(["secrets", "rotate", "--new-key", f"file:{tmp_path / 'new.key'}"]) == 0
    assert out.count("already") == 0
    again = capsys.readouterr()
    assert again.out.count(f"already sealed under key {new.key_id}") == 2
    for secret in ("xero-token-1", "qbo-token-1", key.encoded(), new.encoded(), CLIENT_SECRET):
        assert secret not in out + again.out + again.err
        assert secret not in caplog.text


async def test_the_sync_refuses_to_start_without_the_key_that_sealed_a_file(
    tmp_path: Path, key: SecretKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(_config(tmp_path))
    SealedFile(tmp_path / "secrets" / "acme-xero", key).write("xero-token-1")
    (tmp_path / "secrets" / "books-qbo").write_text("qbo-token-1")
    async with open_targets(config, tmp_path / "home") as pairs:  # the right key: both open
        assert [tenant for tenant, _ in pairs] == ["acme", "books"]
    assert _sealed_text(tmp_path / "secrets" / "books-qbo", key) == "qbo-token-1"
    monkeypatch.delenv(KEY_VARIABLE)
    with pytest.raises(ConfigError, match=f"acme-xero is sealed under key {key.key_id}, but"):
        async with open_targets(config, tmp_path / "home"):
            pass


def test_rotate_refuses_an_unreadable_key_in_one_line(
    tmp_path: Path,
    key: SecretKey,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEDGERHUB_CONFIG", str(_config(tmp_path)))
    monkeypatch.delenv("LEDGERHUB_TEST_NO_SUCH_KEY", raising=False)
    assert main(["secrets", "rotate", "--new-key", "env:LEDGERHUB_TEST_NO_SUCH_KEY"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--new-key: environment variable LEDGERHUB_TEST_NO_SUCH_KEY" in err
    (tmp_path / "short.key").write_text(base64.b64encode(b"x" * 16).decode())
    assert main(["secrets", "rotate", "--new-key", f"file:{tmp_path / 'short.key'}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "32 random bytes" in err
    with pytest.raises(SystemExit) as exited:
        main(["secrets", "rotate", "--new-key", key.encoded()])  # never on the command line
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert key.encoded() not in err


def test_rotate_reports_a_file_sealed_under_an_unknown_key(
    tmp_path: Path,
    key: SecretKey,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("LEDGERHUB_CONFIG", str(_config(tmp_path)))
    stranger = SecretKey.generate()
    SealedFile(tmp_path / "secrets" / "acme-xero", stranger).write("t")
    SealedFile(tmp_path / "secrets" / "books-qbo", key).write("u")
    new = SecretKey.generate()
    monkeypatch.setenv("LEDGERHUB_TEST_NEW_KEY", new.encoded())
    assert main(["secrets", "rotate", "--new-key", "env:LEDGERHUB_TEST_NEW_KEY"]) == 1
    out = capsys.readouterr().out
    assert f"not rotated: sealed under key {stranger.key_id}" in out
    assert "1 secret file(s) sealed" in out
    assert "1 failed" in out
