"""Nested settings as the dotted keys users override, and the one way two configs are compared (a resumed run
against the run it goes on from, a checkpoint against the configured network). A leaf: imports nothing of cnnlab."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """{'model': {'name': 'x'}} → {'model.name': 'x'}: nested settings as the dotted keys users override."""
    if not isinstance(values, dict):
        return {prefix: values}
    out: dict[str, Any] = {}
    for key, value in values.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def differences(before: dict[str, Any], after: dict[str, Any], *, only: Iterable[str] | None = None,
                ignore: Iterable[str] = (), now: str = "now") -> list[str]:
    """Every dotted key whose value differs, as `key=<before> (<now>: <after>)`, sorted by key. `only` keeps the
    top-level keys named there, `ignore` drops those named there."""
    only, ignore = (None if only is None else set(only)), set(ignore)

    def keep(cfg: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in flatten(cfg).items()
                if (only is None or k.split(".")[0] in only) and k.split(".")[0] not in ignore}

    old, new = keep(before), keep(after)
    return [f"{k}={old.get(k)!r} ({now} {new.get(k)!r})" for k in sorted(set(old) | set(new))
            if old.get(k) != new.get(k)]
