"""A connection's pull settings: credentials from ``env:``/``file:`` only, resolved at load with
FILE:LINE errors; ``api_url`` https or http to this machine only; ``pull = { every, since }``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from hub.config.file import load_config
from hub.errors import ConfigError

STRIPE = '[[connections]]\nid = "stripe:acct_x"\nconnector = "stripe"\n'
PLAID = (
    '[[connections]]\nid = "plaid:main-bank"\nconnector = "plaid"\n'
    'client_id = "env:PLAID_CLIENT_ID"\nsecret = "env:PLAID_SECRET"\n'
    'access_token = "file:secrets/plaid-item"\n'
    'accounts = { "BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp" = "checking" }\n'
    'pull = { every = "1d" }\n'
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ledgerhub.toml"
    path.write_text(text)
    return path


def test_stripe_and_plaid_connections_load_with_their_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "rk_test_abc")
    monkeypatch.setenv("PLAID_CLIENT_ID", "client-1")
    monkeypatch.setenv("PLAID_SECRET", "plaid-secret")
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "plaid-item").write_text("access-sandbox-1\n")
    config = load_config(
        write(
            tmp_path,
            STRIPE + 'api_key = "env:STRIPE_API_KEY"\napi_url = "http://127.0.0.1:12111"\n'
            'pull = { every = "15m", since = "2025-01-01" }\n' + PLAID,
        )
    )
    stripe, plaid = config.connections
    assert stripe.credentials() == {"api_key": b"rk_test_abc"}
    assert stripe.pull is not None
    assert stripe.pull.every == 900
    assert stripe.pull.since == date(2025, 1, 1)
    assert stripe.api_url == "http://127.0.0.1:12111"
    assert plaid.credentials() == {
        "client_id": b"client-1",
        "secret": b"plaid-secret",
        "access_token": b"access-sandbox-1",
    }
    assert plaid.accounts == {"BxBXxLj1m4HMXBm9WZZmCWVbPjX16EHwv99vp": "checking"}
    assert plaid.pull is not None
    assert plaid.pull.every == 86400
    assert "rk_test_abc" not in repr(config)
    assert "plaid-secret" not in repr(config)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (STRIPE + 'api_key = "rk_live_123"\n', 4, "connections.0.api_key: String should match"),
        (
            STRIPE + 'api_url = "http://api.example.com"\n',
            4,
            "connections.0.api_url: Value error, api_url must be https://…, or http:// to this "
            "machine only",
        ),
        (STRIPE + 'pull = { every = "soon" }\n', 4, "connections.0.pull.every: Value error"),
        (STRIPE + 'pull = { every = "0m" }\n', 4, "longer than zero"),
        (STRIPE + 'pull = { every = "1h", since = "2025-02-30" }\n', 4, "pull.since"),
        (STRIPE + 'api_key = "env:NOT_SET_ANYWHERE_42"\n', 4, "NOT_SET_ANYWHERE_42"),
        (PLAID.replace('"file:secrets/plaid-item"', '"file:nope"'), 6, "access_token"),
    ],
)
def test_pull_settings_mistakes_name_their_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, line: int, message: str
) -> None:
    monkeypatch.setenv("PLAID_CLIENT_ID", "client-1")
    monkeypatch.setenv("PLAID_SECRET", "plaid-secret")
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:{line}: "), caught.value
    assert message in str(caught.value)
