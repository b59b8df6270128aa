"""What the engine builds from the settings, kept until they change."""

from __future__ import annotations

import functools
import itertools
import threading
from collections.abc import Callable


class FromSettings[T]:
    """
    A function of the settings, whose result is kept until forget().

    The receivers of setting_changed call forget(), which starts a new
    generation. A result is kept with the generation its call started in,
    and the first kept for a generation stays: threads that call at once
    each make one, and all later calls get the same one; a thread that read
    the settings while they changed keeps nothing past the change. Settings
    assigned directly (no setting_changed) take effect at the next process
    start, as those Django itself caches do (the cache handler, the URLconf).
    """

    def __init__(self, make: Callable[[], T]) -> None:
        functools.update_wrapper(self, make)
        self._make = make
        # next() of a count is atomic, where += is not: two threads that
        # forget at once still leave a generation that neither result has.
        self._generations = itertools.count(1)
        self._generation = 0
        self._made: tuple[int, T] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T:
        generation, made = self._generation, self._made
        if made is not None and made[0] == generation:
            return made[1]
        result = self._make()
        with self._lock:
            made = self._made
            if made is None or made[0] < generation:
                self._made = (generation, result)
            elif made[0] == generation:
                return made[1]
        return result

    def forget(self) -> None:
        self._generation = next(self._generations)
