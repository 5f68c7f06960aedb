"""One file per paper; each reads like its paper (equations, shapes, deviations)."""
