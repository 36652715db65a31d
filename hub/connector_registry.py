"""Installed connectors, found through the ``ledgerhub.connectors`` entry-point group."""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from hub.connector import Connector
from hub.errors import ConfigError

GROUP = "ledgerhub.connectors"


@functools.cache
def installed() -> dict[str, type[Connector]]:
    """Every installed connector by name; ``ConfigError`` if an entry point is broken."""
    found: dict[str, type[Connector]] = {}
    for entry in entry_points(group=GROUP):
        try:
            loaded = entry.load()
        except Exception as exc:  # a plugin's import error must name the plugin
            raise ConfigError(
                f"connector plugin {entry.name!r} ({entry.value}) failed to load: {exc}"
            ) from exc
        if not (isinstance(loaded, type) and issubclass(loaded, Connector)):
            raise ConfigError(f"connector plugin {entry.name!r} ({entry.value}) is not a Connector")
        if loaded.name != entry.name:
            raise ConfigError(
                f"connector plugin {entry.name!r} declares name {loaded.name!r}; they must match"
            )
        found[entry.name] = loaded
    return found


def connector(name: str) -> type[Connector] | None:
    """The installed connector called ``name``, or None."""
    return installed().get(name)
