"""Reporting convention: a number is never reported without its sample size(s).

Every metric function documents its sample sizes ("Sample size: ..." in its docstring) and
returns plain numbers, so that it composes with numpy and JSON. :class:`MetricResult` wraps
such a number for reporting:

>>> r = MetricResult("frechet_distance", 3.2, n={"generated": 1000, "real": 1000},
...                  baseline=0.9, baseline_label="real vs real")
>>> r.describe()
'frechet_distance = 3.2 (n: generated=1000, real=1000; real vs real: 0.9)'
>>> r.as_dict()["n"]
{'generated': 1000, 'real': 1000}

The dict form always has the keys ``value`` and ``n``, plus ``std`` / ``stderr`` /
``baseline`` when known, and any extra details (sigma, features, ...).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetricResult:
    name: str
    value: float
    n: dict[str, int] | int
    std: float | None = None  # spread over subsets / splits (KID, IS)
    stderr: float | None = None  # standard error of a mean (Parzen)
    baseline: float | None = None  # what real data scores, for scale
    baseline_label: str = "baseline"
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        sizes = self.n.values() if isinstance(self.n, dict) else [self.n]
        if not sizes or any(not isinstance(k, int) or k < 0 for k in sizes):
            raise ValueError(f"{self.name}: n must be sample sizes (ints >= 0), got {self.n!r}")

    def __float__(self) -> float:
        return float(self.value)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": float(self.value), "n": self.n}
        for key in ("std", "stderr", "baseline"):
            if getattr(self, key) is not None:
                out[key] = float(getattr(self, key))
        if self.baseline is not None:
            out["baseline_label"] = self.baseline_label
        return {**out, **self.details}

    def describe(self, digits: int = 4) -> str:
        fmt = lambda v: f"{v:.{digits}g}" if math.isfinite(v) else str(v)  # noqa: E731
        text = f"{self.name} = {fmt(self.value)}"
        if self.std is not None:
            text += f" +- {fmt(self.std)} (std)"
        if self.stderr is not None:
            text += f" +- {fmt(self.stderr)} (s.e.)"
        if isinstance(self.n, dict):
            sizes = ", ".join(f"{k}={v}" for k, v in self.n.items())
        else:
            sizes = str(self.n)
        text += f" (n: {sizes}"
        if self.baseline is not None:
            text += f"; {self.baseline_label}: {fmt(self.baseline)}"
        return text + ")"
