"""The alert channel: the Slack-compatible POST, retries of a receiver that is down, never an
error into the caller; ``[health]``/``[alerts]`` validated at load with FILE:LINE."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from hub.alerts import Alert, AlertChannel
from hub.config import load_config
from hub.errors import ConfigError
from tests.health.conftest import AlertReceiver

ALERT = Alert(
    kind="security",
    text="ledgerhub: 40 refused keys from 203.0.113.9 in a minute",
    details={"address": "203.0.113.9", "count": 40},
)


def _fast(url: str | None) -> AlertChannel:
    return AlertChannel(url, timeout=2, attempts=3, wait_initial=0.01, wait_max=0.05)


async def test_an_alert_is_one_slack_compatible_post(receiver: AlertReceiver) -> None:
    await _fast(receiver.url).send(ALERT)
    assert [r.body for r in receiver.received] == [
        {
            "text": ALERT.text,
            "ledgerhub": {"kind": "security", "address": "203.0.113.9", "count": 40},
        }
    ]


async def test_a_receiver_that_is_down_is_retried(receiver: AlertReceiver) -> None:
    receiver.statuses.extend([500, 503])
    await _fast(receiver.url).send(ALERT)
    assert receiver.attempts == 3
    assert len(receiver.received) == 1


async def test_a_failed_delivery_is_a_warning_not_an_error(
    receiver: AlertReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.statuses.extend([500, 500, 500])
    with caplog.at_level(logging.WARNING, logger="hub.alerts"):
        await _fast(receiver.url).send(ALERT)  # does not raise
    assert receiver.attempts == 3
    assert receiver.received == []
    assert "alert not delivered" in caplog.text
    assert receiver.url not in caplog.text  # the URL carries the webhook's token

    receiver.statuses.extend([404])  # refused: not retried
    await _fast(receiver.url).send(ALERT)
    assert receiver.attempts == 4

    await _fast("http://127.0.0.1:9/nothing-listens").send(ALERT)  # unreachable: no raise


async def test_without_a_webhook_an_alert_is_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="hub.alerts"):
        await AlertChannel(None).send(ALERT)
    assert ALERT.text in caplog.text


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ledgerhub.toml"
    path.write_text(text)
    return path


def test_the_sections_are_read_with_their_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = load_config(_config(tmp_path, ""))
    assert (empty.health.every, empty.health.remind_after) == (900.0, 14400.0)
    assert AlertChannel.from_config(empty).configured is False
    monkeypatch.setenv("HOOK", "https://hooks.slack.com/services/T0/B0/secret")
    config = load_config(
        _config(
            tmp_path,
            '[health]\nevery = "2m"\nremind_after = "1d"\n[alerts]\nwebhook_url = "env:HOOK"\n',
        )
    )
    assert (config.health.every, config.health.remind_after) == (120.0, 86400.0)
    assert config.alerts.webhook() == "https://hooks.slack.com/services/T0/B0/secret"
    assert "secret" not in repr(config.alerts)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[health]\nevery = "15 minutes"\n', ":2: health.every: Value error, a duration is "),
        ('[health]\nremind_after = "0s"\n', ":2: health.remind_after: Value error, a duration "),
        ('[health]\nevry = "15m"\n', ":2: health.evry: Extra inputs are not permitted"),
        ('[alerts]\nwebhook_url = "https://hooks.example.com/x"\n', ":2: alerts.webhook_url: "),
        ('[alerts]\nwebhook_url = "env:NO_SUCH_HOOK_VAR"\n', ":2: alerts.webhook_url: environment"),
        (
            '[[connections]]\nid = "bank:checking"\nconnector = "bank"\n'
            'health = { stale_after = "soon" }\n',
            ":4: connections.0.health.stale_after: Value error, a duration",
        ),
    ],
)
def test_a_bad_value_is_one_error_naming_file_line_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = _config(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(str(path) + message), str(caught.value)


def test_an_alert_webhook_must_be_https_or_local(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOOK", "http://hooks.example.com/x")
    path = _config(tmp_path, '[alerts]\nwebhook_url = "env:HOOK"\n')
    with pytest.raises(ConfigError, match=r":2: alerts.webhook_url: the alert webhook must be"):
        load_config(path)
