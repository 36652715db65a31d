"""The health state machine: one alert per change of state, a reminder per ``remind_after``
while failing, never one per check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.domain.health import CheckResult, ConnectionHealth, alert_text, step

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
REMIND = timedelta(hours=4)


def _result(ok: bool, detail: str = "") -> CheckResult:
    return CheckResult("stripe:acct_1", "default", ok, detail or ("fine" if ok else "401"))


def test_a_first_check_that_passes_raises_nothing() -> None:
    change = step(None, _result(True), T0, REMIND)
    assert change.alert is None
    assert (change.health.state, change.health.since, change.health.alerted_at) == ("ok", T0, None)


def test_failing_checks_alert_once_then_once_per_remind_after_then_recover_once() -> None:
    health: ConnectionHealth | None = step(None, _result(True), T0, REMIND).health
    alerts = []
    now = T0
    for minute in range(1, 9 * 60, 15):  # every 15 minutes for 9 hours, failing
        now = T0 + timedelta(minutes=minute)
        change = step(health, _result(False), now, REMIND)
        health = change.health
        alerts.append(change.alert)
    fired = [a for a in alerts if a is not None]
    assert fired == ["failing", "reminder", "reminder"]  # at 0:01, 4:01, 8:01
    assert health is not None
    assert health.state == "failing"
    assert health.since == T0 + timedelta(minutes=1)  # a reminder does not move `since`
    recovered = step(health, _result(True, "back"), now + timedelta(minutes=15), REMIND)
    assert recovered.alert == "recovered"
    again = step(recovered.health, _result(True), now + timedelta(minutes=30), REMIND)
    assert again.alert is None


def test_a_first_check_that_fails_alerts_and_a_flip_alerts_each_time() -> None:
    first = step(None, _result(False), T0, REMIND)
    assert first.alert == "failing"
    back = step(first.health, _result(True), T0 + timedelta(minutes=1), REMIND)
    down = step(back.health, _result(False), T0 + timedelta(minutes=2), REMIND)
    assert (back.alert, down.alert) == ("recovered", "failing")


def test_the_alert_text_names_the_connection_and_what_was_found() -> None:
    failing = step(None, _result(False, "HTTP 401: Invalid API Key"), T0, REMIND).health
    assert alert_text("failing", failing) == (
        "ledgerhub: connection stripe:acct_1 is failing: HTTP 401: Invalid API Key"
    )
    assert "still failing (since 2026-03-01T12:00:00+00:00)" in alert_text("reminder", failing)
