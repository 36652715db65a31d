"""The deployment files in ``ops/``, checked by the tools that run them: ``systemd-analyze
verify`` on the units, ``promtool check rules`` and ``promtool test rules`` on the alert rules,
the compose file's services (and ``docker compose config`` where Compose is installed); every
command they start parses as a ``ledgerhub`` command; and the dashboard and the rules name only
series the hub exports. Outside CI a missing tool skips its test; in CI (``CI`` set) it fails."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from hub import telemetry
from hub.cli import build_parser
from hub.domain.health import ConnectionHealth
from hub.runtime import health
from hub.telemetry import OtlpSettings, Telemetry
from tests.api.conftest import bearer, event_body, make_key
from tests.ops.harness import ROOT, tool

OPS = ROOT / "ops"
UNITS = sorted((OPS / "systemd").glob("*.service"))
RULES = OPS / "prometheus" / "ledgerhub.rules.yaml"
RULE_TESTS = OPS / "prometheus" / "ledgerhub.tests.yaml"
DASHBOARD = OPS / "grafana" / "ledgerhub.json"
INSTALLED = "/opt/ledgerhub/.venv/bin/ledgerhub"
"""Where the units expect the console script (a virtualenv in /opt/ledgerhub)."""


def _parses(argv: list[str]) -> None:
    """Fail unless ``argv`` (``ledgerhub …``) is a command the CLI accepts."""
    assert Path(argv[0]).name == "ledgerhub", argv
    args = build_parser().parse_args(argv[1:])
    assert callable(args.run)


def _exec_start(unit: Path) -> list[str]:
    lines = [line for line in unit.read_text().splitlines() if line.startswith("ExecStart=")]
    assert len(lines) == 1, unit
    return shlex.split(lines[0].removeprefix("ExecStart="))


def test_the_systemd_units_verify_and_are_hardened(tmp_path: Path) -> None:
    analyze = tool("systemd-analyze")
    assert {u.name for u in UNITS} == {"ledgerhub-serve.service", "ledgerhub-worker.service"}
    installed = Path(sys.executable).with_name("ledgerhub")  # verify needs a real executable
    copies = []
    for unit in UNITS:
        text = unit.read_text()
        assert text.count(INSTALLED) == 1, unit
        for setting in (
            "User=ledgerhub",
            "NoNewPrivileges=yes",
            "ProtectSystem=strict",
            "Restart=on-failure",
            "EnvironmentFile=/etc/ledgerhub/ledgerhub.env",
            "CapabilityBoundingSet=\n",
        ):
            assert setting in text, f"{unit.name} lacks {setting!r}"
        assert not re.search(r"(?m)^Environment=.*(SECRET|PASSWORD|TOKEN|KEY)", text)
        _parses(_exec_start(unit))
        copy = tmp_path / unit.name
        copy.write_text(text.replace(INSTALLED, str(installed)))
        copies.append(str(copy))
    result = subprocess.run(
        [str(analyze), "verify", *copies], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    # verify exits 0 on an unknown or mistyped setting, but says so: any line naming a unit fails
    complaints = [line for line in result.stderr.splitlines() if ".service" in line]
    assert result.returncode == 0, result.stderr
    assert not complaints, result.stderr
    assert "--no-workers" in _exec_start(OPS / "systemd" / "ledgerhub-serve.service")
    assert _exec_start(OPS / "systemd" / "ledgerhub-worker.service")[1] == "worker"


def test_the_compose_file_runs_postgres_serve_without_workers_and_a_worker() -> None:
    compose: dict[str, Any] = yaml.safe_load((OPS / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "serve", "worker"}
    assert services["postgres"]["image"].startswith("postgres:")
    for name in ("migrate", "serve", "worker"):
        service = services[name]
        _parses(service["command"])
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
        assert "${POSTGRES_PASSWORD" in service["environment"]["LEDGERHUB_DSN"]
        assert service["environment"]["LEDGERHUB_SECRET_KEY"].startswith("file:/run/secrets/")
    assert services["serve"]["command"][1:3] == ["serve", "--no-workers"]
    assert services["worker"]["command"][1] == "worker"
    for name in ("serve", "worker"):
        assert services[name]["depends_on"]["migrate"]["condition"] == (
            "service_completed_successfully"
        )
    for name in ("postgres", "serve", "worker"):
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    assert "/readyz" in " ".join(services["serve"]["healthcheck"]["test"])
    # only the API is published, and only on the host's loopback
    published = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert published == {"serve": ["127.0.0.1:8080:8080"]}
    docker = (
        subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if tool_present("docker")
        else None
    )
    if docker is not None and docker.returncode == 0:
        checked = subprocess.run(
            ["docker", "compose", "-f", str(OPS / "compose.yaml"), "config", "--quiet"],
            capture_output=True, text=True, check=False,
            env={"PATH": "/usr/bin:/bin:/usr/local/bin", "POSTGRES_PASSWORD": "x"},
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr


def tool_present(name: str) -> bool:
    import shutil

    return shutil.which(name) is not None


def test_promtool_checks_the_rules_and_their_unit_tests_pass() -> None:
    promtool = tool("promtool")
    checked = subprocess.run(
        [str(promtool), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
    tested = subprocess.run(
        [str(promtool), "test", "rules", str(RULE_TESTS)],
        capture_output=True, text=True, check=False, cwd=RULE_TESTS.parent,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested_alerts = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert alerts == tested_alerts  # every rule has a unit test
    assert {"LedgerhubProjectionLagging", "LedgerhubEventsParked", "LedgerhubConnectionFailing",
            "LedgerhubHttp5xx", "LedgerhubSyncFailing"} <= alerts  # fmt: skip


_FUNCTIONS = {
    "sum", "max", "min", "avg", "count", "rate", "irate", "increase", "histogram_quantile",
    "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless",
    "bool", "offset", "abs", "clamp_min", "clamp_max", "label_values", "humanizeDuration",
}  # fmt: skip


def series_names(expr: str) -> set[str]:
    """The series a PromQL expression names (label matchers, ranges, grouping labels, strings
    and numbers taken out; what is left that is not a function or keyword is a series)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"\b\d+(?:\.\d+)?(?:e\d+)?\b", "", expr)
    return {name for name in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", expr)} - _FUNCTIONS


def _exported(text: str) -> set[str]:
    return {line.split("{")[0].split()[0] for line in text.splitlines() if line and line[0] != "#"}


def _every_instrument() -> set[str]:
    """The series a fresh ``Telemetry`` exports once each of its instruments has been used,
    and the health checks' gauge (``hub.runtime.health``, on this process's telemetry)."""
    fresh = Telemetry(OtlpSettings())
    fresh.events.results([("t", "s", "appended"), ("t", "s", "duplicate")])
    fresh.projections.update([telemetry.ProjectionSnapshot("p", 1, 1.0, 1)])
    fresh.sync.call("xero", "create", "ok", 0.1)
    fresh.sync.retry("xero")
    fresh.sync.document("xero", "failed")
    fresh.http.request("GET", "/healthz", 200, 0.001)
    now = datetime.now(UTC)
    failing = ConnectionHealth("stripe:acct_1", "default", "failing", now, now, "refused")
    health.GAUGE.update([failing])
    try:
        with_health = _exported(telemetry.render().decode())
    finally:
        health.GAUGE.update([])
    return _exported(fresh.render().decode()) | with_health


async def test_the_dashboard_and_the_rules_name_only_series_the_hub_exports(
    api: str, hub: Any, http: aiohttp.ClientSession
) -> None:
    ingest = await make_key(hub, "ingest:*")
    operate = await make_key(hub, "operate", tenant="*")
    body = {"events": [event_body("ch_dash_1")]}
    async with http.post(f"{api}/v1/events", json=body, headers=bearer(ingest)) as r:
        assert r.status == 200
    async with http.get(f"{api}/metrics", headers=bearer(operate)) as r:
        assert r.status == 200
        scraped = _exported(await r.text())
    assert {"ledgerhub_events_appended_total", "ledgerhub_projection_status_up",
            "ledgerhub_http_server_request_duration_seconds_count"} <= scraped  # fmt: skip
    exported = scraped | _every_instrument()

    rules = yaml.safe_load(RULES.read_text())
    in_rules = set().union(*(series_names(r["expr"]) for g in rules["groups"] for r in g["rules"]))
    assert in_rules <= exported, in_rules - exported

    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 15
    in_dashboard = set().union(*(series_names(e) for e in exprs))
    assert in_dashboard <= exported, in_dashboard - exported
    assert in_rules <= in_dashboard  # what an alert watches has a panel
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_series_names_finds_each_series_and_nothing_else() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{job=~"$job",status=~"5.."}'
        "[$__rate_interval]))) / ignoring(x) b_total > 1e3 and on (tenant) c"
    )
    assert series_names(expr) == {"a_bucket", "b_total", "c"}
