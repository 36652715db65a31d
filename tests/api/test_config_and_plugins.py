"""The config file (errors name file and line; secrets from env or file) and connector plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub.config import load_config, resolve_secret
from hub.errors import ConfigError
from hub.spi.connector import Connector
from hub.spi.registry import connectors

GOOD = """\
[tenants.default]
timezone = "America/New_York"

[[connections]]
id = "stripe:acct_demo"
connector = "stripe"
webhook_secret = "env:LH_TEST_STRIPE_SECRET"

[[connections]]
id = "bank:checking"
connector = "bank"
ledger_account = "1000"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ledgerhub.toml"
    path.write_text(text)
    return path


def test_a_good_file_resolves_its_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LH_TEST_STRIPE_SECRET", "whsec_abc")
    config = load_config(write(tmp_path, GOOD))
    stripe = config.connection("stripe:acct_demo")
    assert stripe is not None
    assert stripe.secret() == b"whsec_abc"
    assert "whsec_abc" not in repr(config)  # never in logs or reprs
    assert config.tenant("default").timezone == "America/New_York"


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (('connector = "bank"', 'connector = "bank"\ncolour = "red"'), 12, "colour"),
        (('timezone = "America/New_York"', 'timezone = "Mars/Base"'), 2, "Mars/Base"),
        (('id = "bank:checking"', 'id = "shopify:checking"'), 9, "must start with its connector"),
        (
            ('webhook_secret = "env:LH_TEST_STRIPE_SECRET"', 'webhook_secret = "plain"'),
            7,
            "webhook_secret",
        ),
    ],
)
def test_mistakes_name_the_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change: tuple[str, str], line: int, words: str
) -> None:
    monkeypatch.setenv("LH_TEST_STRIPE_SECRET", "whsec_abc")
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:{line}:")
    assert words in str(caught.value)


def test_a_missing_secret_is_found_at_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LH_TEST_STRIPE_SECRET", raising=False)
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match=rf"{path}:7: .*LH_TEST_STRIPE_SECRET"):
        load_config(path)


def test_secrets_from_files_relative_to_the_config(tmp_path: Path) -> None:
    (tmp_path / "s.txt").write_text("  from-file\n")
    assert resolve_secret("file:s.txt", base=tmp_path) == b"from-file"
    with pytest.raises(ConfigError, match="cannot be read"):
        resolve_secret("file:missing.txt", base=tmp_path)
    with pytest.raises(ConfigError, match="env:NAME or file:PATH"):
        resolve_secret("whsec_literal")


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[[connections]\n")
    with pytest.raises(ConfigError, match=rf"{path}: not valid TOML.*line 1"):
        load_config(path)


def test_builtin_connectors_register_through_entry_points() -> None:
    found = connectors()
    assert {"stripe", "shopify", "woocommerce", "square", "xero", "bank"} <= set(found)
    for name, plugin in found.items():
        assert issubclass(plugin, Connector)
        assert plugin.name == name
        assert plugin.event_types
    for name in ("stripe", "shopify", "woocommerce", "square", "xero"):
        verifier = found[name].verifier
        assert verifier is not None
        assert verifier.signature_headers
    assert found["bank"].verifier is None
