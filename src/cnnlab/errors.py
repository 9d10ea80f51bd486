"""One exception type for every mistake a user can make, so the CLI can print one clear paragraph."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any


class CnnlabError(Exception):
    """A user-facing error: the message names the bad value and what would be valid."""

    exit_code = 2  # what cnnlab-train exits with after printing it


class NonFiniteLossError(CnnlabError):
    """The training loss became nan or inf; the message names the step."""


class UnknownNameError(CnnlabError, KeyError):
    """A name (model, pooling, dataset...) that no registry knows."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


def unknown_name(kind: str, name: object, valid: Iterable[str], key: str | None = None) -> UnknownNameError:
    """Build the error for an unknown name, with close matches first."""
    valid = sorted(valid)
    close = difflib.get_close_matches(str(name), valid, n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    where = f" (config key `{key}`)" if key else ""
    return UnknownNameError(
        f"Unknown {kind} '{name}'{where}. Valid {kind} names: {', '.join(valid)}.{hint}"
    )


def whole_number(option: str, value: Any, least: int = 1, meaning: str = "", valid: str = "") -> int:
    """`value` if it is a whole number ≥ `least` (true/false and 2.5 are not), else the error naming `option`:
    the one such check of every config key, model knob and callback option."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        hint = f" ({meaning})" if meaning else ""
        also = f" {valid}" if valid else ""
        raise CnnlabError(f"{option} must be a whole number ≥ {least}{hint}, got {value!r}.{also}")
    return value
