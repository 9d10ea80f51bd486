"""Name → constructor tables, as timm does for models: configs pick by name, not by import path."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

from cnnlab.errors import CnnlabError, unknown_name

T = TypeVar("T")

# What configs pass to a name-picked factory: a name, or `{name: ..., **options}`.
Spec = str | Mapping[str, Any]


class Registry(Generic[T]):
    """A named table of constructors; looking up an unknown name raises a clear error."""

    def __init__(self, kind: str, config_key: str | None = None) -> None:
        self.kind = kind
        self.config_key = config_key
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except (KeyError, TypeError):
            raise unknown_name(self.kind, name, self._items, self.config_key) from None

    def build(self, name: str, *args: Any, **options: Any) -> Any:
        """Look `name` up and call it; options it rejects give one clear error, not a TypeError from inside."""
        factory = self.get(name)
        try:
            return factory(*args, **options)
        except (TypeError, ValueError) as err:
            hint = _options_hint(factory, len(args))
            raise CnnlabError(f"{self.kind} '{name}' rejects options {options}: {err}.{hint}") from None

    def names(self) -> list[str]:
        return sorted(self._items)

    def registered(self) -> list[str]:
        """The names in the order they were registered (where order matters: augmentations)."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def _options_hint(factory: Callable, n_positional: int) -> str:
    try:
        params = list(inspect.signature(factory).parameters.values())[n_positional:]
    except (TypeError, ValueError):
        return ""
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    return f" Its options: {', '.join(names)}." if names else " It takes no options."


def split_spec(spec: Spec, group: str) -> tuple[str, dict[str, Any]]:
    """`relu` or `{name: relu, **options}` → (name, options)."""
    options = {"name": spec} if isinstance(spec, str) else dict(spec)
    name = options.pop("name", None)
    if name is None:
        raise CnnlabError(f"the {group} config has no `name`; pick one with {group}=<name>.")
    return name, options


def spec_name(spec: Spec) -> Any:
    """The name a `relu` or `{name: relu, ...}` spec picks (None when it has none)."""
    return spec if isinstance(spec, str) else spec.get("name")
