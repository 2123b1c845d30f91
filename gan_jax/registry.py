"""One registry class for everything chosen by name in a config: losses, penalties, optimizers, models, metrics,
feature networks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
  """Named entries of one kind, each with keyword metadata (e.g. a penalty's `at`, a model's default norm).

  LOSSES = Registry("loss")

  @LOSSES.register("hinge")
  def hinge(real_logits, fake_logits): ...
  """

  def __init__(self, kind: str):
    self.kind = kind
    self._entries: dict[str, T] = {}
    self._meta: dict[str, dict[str, Any]] = {}

  def register(self, name: str, **meta: Any) -> Callable[[T], T]:
    """Decorator adding `name`; a second entry of the same name is refused."""

    def add(entry: T) -> T:
      if name in self._entries:
        raise ValueError(f"{self.kind} {name!r} is already registered (by {describe(self._entries[name])})")
      self._entries[name], self._meta[name] = entry, meta
      return entry

    return add

  def get(self, name: str) -> T:
    if name not in self._entries:
      raise ValueError(f"unknown {self.kind} {name!r}; expected one of {self.names()}")
    return self._entries[name]

  def meta(self, name: str) -> dict[str, Any]:
    self.get(name)
    return dict(self._meta[name])

  def names(self, ordered: bool = False) -> list[str]:
    """The names, sorted, or in the order they were registered with `ordered`."""
    return list(self._entries) if ordered else sorted(self._entries)

  def __contains__(self, name: object) -> bool:
    return name in self._entries


def describe(fn: Any) -> str:
  """`module:qualname` of a function (or of the function under a functools.partial)."""
  base = getattr(fn, "func", fn)
  module = getattr(base, "__module__", None)
  name = getattr(base, "__qualname__", None) or type(base).__name__
  return f"{module}:{name}" if module else name
