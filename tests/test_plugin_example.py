"""The example plugin package (``tests/plugin_example``, installed beside the hub) is found through
the registry like any installed plugin, and uses nothing of the hub but its plugin surface."""

from __future__ import annotations

import ast
from pathlib import Path

from hub.spi.connector import Connector
from hub.spi.registry import connectors, targets
from hub.spi.target import TargetPlugin

EXAMPLE = Path(__file__).parent / "plugin_example"
SURFACE = ("hub.spi", "hub.domain", "hub.errors", "hub.testing")
"""What a plugin package may import of the hub (``hub.testing`` in its tests only)."""


def test_the_example_connector_is_discovered_through_the_registry() -> None:
    from ledgerhub_example.connector import AcmePayConnector

    found = connectors()["acmepay"]
    assert found is AcmePayConnector
    assert issubclass(found, Connector)
    assert found.verifier is not None
    assert found.mapper is not None
    assert found.parser is found.mapper.parser


def test_the_example_target_is_discovered_through_the_registry() -> None:
    from ledgerhub_example.target import JsonLinesPlugin, JsonLinesSettings

    found = targets()["jsonl"]
    assert isinstance(found, JsonLinesPlugin)
    assert isinstance(found, TargetPlugin)
    assert found.settings is JsonLinesSettings


def _hub_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return [
        name for name in found if name.partition(".")[0] in {"hub", "connectors", "projections"}
    ]


def test_the_example_imports_only_the_plugin_surface() -> None:
    sources = sorted(EXAMPLE.rglob("*.py"))
    assert len(sources) >= 6
    for path in sources:
        for module in _hub_imports(path):
            allowed = SURFACE if path.parts[-2] == "tests" else SURFACE[:-1]
            ok = any(module == a or module.startswith(f"{a}.") for a in allowed)
            assert ok, f"{path.relative_to(EXAMPLE)} imports {module}"
