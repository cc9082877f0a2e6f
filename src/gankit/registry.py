"""One small registry per kind of component (models, losses, datasets, metrics...).

Modelled on torchvision's `register_model`/`get_model`/`list_models`: a name maps to a builder,
a duplicate name is a programming error, and an unknown name is a user error that suggests
the closest valid one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from gankit.errors import GankitError, did_you_mean

T = TypeVar("T", bound=Callable[..., Any])


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind  # used in messages: "unknown model 'x'"
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(builder: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._entries[name] = builder
            return builder

        return decorator

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise GankitError(
                f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)}"
                f" Known: {', '.join(sorted(self._entries))}."
            )
        return self._entries[name]

    def build(self, name: str, *args: Any, **kwargs: Any) -> Any:
        return self.get(name)(*args, **kwargs)

    def list(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
