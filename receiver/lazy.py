"""`lazy`: functools.cached_property without its lock, for values worked out once per request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class lazy(Generic[T]):  # noqa: N801 - used like the decorator it stands in for
    """A method's result, worked out on first read and then kept in the instance's __dict__
    (also of a frozen dataclass), where later reads find it without calling anything.

    Python 3.11's cached_property takes an RLock on every first read (~0.7 µs), and the reply path
    makes several such objects per callback (core.Outcome, a Tencent message). Without the lock,
    two threads reading at once may both compute the value: fine for the pure functions used here.
    """

    def __init__(self, func: Callable[[Any], T]) -> None:
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> T:
        if instance is None:
            return self  # type: ignore[return-value]
        value = instance.__dict__[self.name] = self.func(instance)
        return value
