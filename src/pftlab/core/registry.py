"""Name -> component registries, open to other packages through entry points.

Every kind of component (methods, models, global-stage algorithms, benchmarks) has one
`Registry`. pftlab's own components are registered when their package is imported; a third-party
package adds its own either by calling `register` or, without any code run by the user, through
an entry point in the registry's group (for example, in the plugin's pyproject.toml:
`[project.entry-points."pftlab.methods"] my-ft = "my_plugin:METHOD"`). Entry points are loaded
on the first lookup, so `import pftlab` stays cheap and a broken plugin names itself.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Generic, Protocol, TypeVar

from pftlab.core.errors import UserError
from pftlab.core.io import safe_name


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)

BUILTIN = "pftlab"


class Registry(Generic[T]):
    """An ordered name -> component map; `origin(name)` says which package provided it."""

    def __init__(self, kind: str, group: str, expected: type | tuple[type, ...] | None = None) -> None:
        self.kind, self.group, self.expected = kind, group, expected
        self._items: dict[str, T] = {}
        self._origin: dict[str, str] = {}
        self._plugins_loaded = False

    def register(self, item: T, origin: str = BUILTIN, *, replace: bool = False) -> T:
        """Add `item` under `item.name`; a name taken by another component is refused unless `replace`."""
        if self.expected is not None and not isinstance(item, self.expected):
            wanted = _names(self.expected)
            raise UserError(f"{self.kind} from {origin!r}: expected a {wanted}, got {type(item).__name__}")
        name = item.name
        if not isinstance(name, str) or not name or name != name.strip():
            raise UserError(f"{self.kind} from {origin!r}: its name must be a non-empty string, got {name!r}")
        try:
            safe_name(name)  # names become file names in a run directory (matrices/<method>.csv)
        except ValueError as err:
            raise UserError(f"{self.kind} from {origin!r}: {err}") from None
        if name in self._items and not replace and self._items[name] is not item:
            raise UserError(
                f"{self.kind} {name!r} from {origin!r} clashes with the one from {self._origin[name]!r}; rename it"
            )
        self._items[name] = item
        self._origin[name] = origin
        return item

    def unregister(self, name: str) -> None:
        self._items.pop(name, None)
        self._origin.pop(name, None)

    def load_plugins(self) -> None:
        """Register every entry point of this registry's group (once)."""
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in sorted(entry_points(group=self.group), key=lambda e: e.name):
            origin = ep.dist.name if ep.dist is not None else ep.value
            try:
                item = ep.load()
            except Exception as err:  # a broken plugin must say which it is
                raise UserError(f"plugin {origin!r}: entry point {self.group}:{ep.name} failed to load: {err}") from err
            self.register(item, origin)

    def __getitem__(self, name: str) -> T:
        self.load_plugins()
        try:
            return self._items[name]
        except KeyError:
            raise UserError(f"unknown {self.kind} {name!r}; allowed: {', '.join(self._items)}") from None

    def get(self, name: str) -> T | None:
        self.load_plugins()
        return self._items.get(name)

    def __contains__(self, name: object) -> bool:
        self.load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self.load_plugins()
        return iter(list(self._items))

    def __len__(self) -> int:
        self.load_plugins()
        return len(self._items)

    def names(self) -> list[str]:
        self.load_plugins()
        return list(self._items)

    def items(self) -> list[tuple[str, T]]:
        self.load_plugins()
        return list(self._items.items())

    def values(self) -> list[T]:
        self.load_plugins()
        return list(self._items.values())

    def origin(self, name: str) -> str:
        self.load_plugins()
        return self._origin[name]

    def unknown(self, name: str) -> str | None:
        """None when `name` is registered, else the one-line complaint naming what is allowed."""
        if name in self:
            return None
        return f"unknown {self.kind} {name!r}; allowed: {', '.join(self._items)}"


def _names(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(t.__name__ for t in types)


def caller_package(depth: int = 2) -> str:
    """The top-level package of the code `depth` frames up (who called a `register_*` function)."""
    frame = inspect.currentframe()
    for _ in range(depth):
        frame = frame.f_back if frame is not None else None
    name = str(frame.f_globals.get("__name__", "")) if frame is not None else ""
    return name.split(".")[0] or "unknown"
