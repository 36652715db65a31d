"""``BeancountSettings``: the Beancount target's keys in a tenant's ``sync`` table."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from hub.spi.target import TargetSettings


def _path(value: object) -> object:
    if not isinstance(value, str):
        raise PydanticCustomError("path", "a file path is a string")
    return value


class BeancountSettings(TargetSettings):
    """``sync = { target = "beancount", path = "books/acme.beancount" }``."""

    path: Annotated[str | None, BeforeValidator(_path)] = None
    """The ledger file; a relative path is under ``LEDGERHUB_HOME`` (default:
    ``sync/<tenant>.beancount`` there)."""
