"""Find the line of a TOML file that defines a key path (``tomllib`` keeps no line numbers).

``line_of(text, ("connections", 1, "mapping", "sale", "status", "transform"))`` is the line where
that value is written, or of its nearest enclosing key that is written: the second
``[[connections]]``'s ``[connections.mapping.sale]`` table's ``status = {…}`` line. Array tables
count their ``[[…]]`` headers; inline tables and dotted keys are followed on their line.
"""

from __future__ import annotations

import re

Location = tuple[str | int, ...]

_KEY = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_DOTTED})\s*\]\]?")
_ASSIGN = re.compile(rf"({_DOTTED})\s*=")


def _keys(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.findall(_KEY, dotted)]


def _common(a: Location, b: Location) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def line_of(text: str, location: Location) -> int:
    """The 1-based line that best matches ``location`` (1 when nothing does)."""
    arrays: dict[tuple[str, ...], int] = {}
    table: Location = ()
    best_len, best_line = 0, 1

    def resolve(keys: list[str]) -> Location:
        path: list[str | int] = []
        names: list[str] = []
        for key in keys:
            names.append(key)
            path.append(key)
            index = arrays.get(tuple(names))
            if index is not None:
                path.append(index)
        return tuple(path)

    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.split("#", 1)[0] if '"' not in line and "'" not in line else line
        header = _HEADER.match(stripped)
        if header is not None:
            keys = _keys(header.group(2))
            if header.group(1) == "[[":
                arrays[tuple(keys)] = arrays.get(tuple(keys), -1) + 1
            table = resolve(keys)
            candidates = [table]
        else:
            candidates = []
            assign = _ASSIGN.match(stripped.strip())
            if assign is not None:
                first = (*table, *_keys(assign.group(1)))
                candidates.append(first)
                brace = stripped.find("{", assign.end())
                if brace >= 0:
                    for inner in _ASSIGN.finditer(stripped, brace):
                        candidates.append((*first, *_keys(inner.group(1))))
        for candidate in candidates:
            length = _common(candidate, location)
            # the candidate encloses the location, or is inside it (a deeper header defines it)
            related = length in (len(candidate), len(location))
            if related and length > best_len:
                best_len, best_line = length, number
    return best_line
