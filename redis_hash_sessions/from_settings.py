"""What the engine builds from the settings once, and again when they change."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable


class FromSettings[T]:
    """
    A function of the settings, called once and again after forget().

    The receivers of setting_changed call forget(). It starts a new
    generation, and a result is kept with the generation its call started
    in: a thread that read the settings while they changed keeps nothing
    past the change. Settings assigned directly (no setting_changed) take
    effect at the next process start, as those Django itself caches do (the
    cache handler, the URLconf).
    """

    def __init__(self, make: Callable[[], T]) -> None:
        functools.update_wrapper(self, make)
        self._make = make
        # next() of a count is atomic, where += is not: two threads that
        # forget at once still leave a generation that neither result has.
        self._generations = itertools.count(1)
        self._generation = 0
        self._made: tuple[int, T] | None = None

    def __call__(self) -> T:
        generation, made = self._generation, self._made
        if made is not None and made[0] == generation:
            return made[1]
        result = self._make()
        self._made = (generation, result)
        return result

    def forget(self) -> None:
        self._generation = next(self._generations)
