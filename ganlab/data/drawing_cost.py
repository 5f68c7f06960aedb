"""What one image of a procedural world costs to draw: CPU milliseconds on one core.

``ganlab world WORLD --bench`` prints it as JSON. The clock is this process's CPU time,
not wall time, so other work on the machine does not count; still, CPU time moves by
tens of percent on a shared machine (caches, clock speed), so the figure is the best of
``rounds`` rounds over the same ``n`` images, as ``timeit`` reports. Drawing runs in PIL
and numpy on one thread; a dataset is drawn once and then cached on disk.

A benchmark, not a test: the course's tests check that it runs and what it reports, never
how fast the machine was that day.
"""

from __future__ import annotations

import time
from collections.abc import Callable

WORLDS = ("birds", "faces", "landscapes")


def _drawer(world: str, size: int) -> Callable[[int], object]:
    """The function that draws image ``i`` of ``world``'s train split at ``size`` px."""
    if world == "birds":
        from ganlab.data.birds import BirdsWorld

        birds = BirdsWorld("train")
        return lambda i: birds.image(i, size)
    if world == "faces":
        from ganlab.data.faces import FacesWorld

        faces = FacesWorld("train")
        return lambda i: faces.image(i, size)
    if world == "landscapes":
        from ganlab.data.landscapes import LandscapesWorld

        scenes = LandscapesWorld("train")
        return lambda i: scenes.scene(i, size)
    raise ValueError(f"unknown world {world!r}: expected one of {list(WORLDS)}")


def drawing_cost(world: str, size: int = 64, n: int = 40, rounds: int = 5) -> dict:
    """CPU ms per ``size`` px image of ``world``: the best of ``rounds`` rounds of ``n``."""
    if not isinstance(n, int) or n < 1 or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"n and rounds must be ints >= 1, got n={n!r}, rounds={rounds!r}")
    draw = _drawer(world, size)
    draw(0)  # first call pays for imports and lookup tables, not for drawing
    per_image = []
    for _ in range(rounds):
        start = time.process_time()
        for i in range(n):
            draw(i)
        per_image.append((time.process_time() - start) / n)
    best = min(per_image)
    return {
        "world": world,
        "size": size,
        "n": n,
        "rounds_ms": [round(t * 1e3, 3) for t in per_image],
        "ms_per_image": round(best * 1e3, 3),
        "images_per_s": round(1 / best, 1) if best > 0 else None,
        "seconds_per_10000": round(best * 10_000, 1),
    }
