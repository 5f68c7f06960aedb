"""Run profiles: one switch, ``GANLAB_PROFILE``, picks the scale of every chapter.

* ``smoke``: tiny widths and a few steps; CI runs this; every notebook well under a minute.
* ``cpu``: a laptop; recognisable results in about ten minutes.
* ``gpu``: one GPU; real training in under about thirty minutes.

Unset, the profile is ``gpu`` when CUDA is available and ``cpu`` otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

PROFILES = ("smoke", "cpu", "gpu")


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA if present, then Apple's MPS, then the CPU (or ``prefer`` if given)."""
    if prefer:
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class Profile:
    name: str
    device: torch.device
    source: str  # "GANLAB_PROFILE", "argument" or "auto"

    def describe(self) -> str:
        extra, threads = "", torch.get_num_threads()
        if self.device.type == "cuda":
            extra = f" ({torch.cuda.get_device_name(self.device)})"
        return (
            f"ganlab profile: {self.name} [{self.source}] | device: {self.device}{extra} | "
            f"torch {torch.__version__} | {threads} CPU thread{'s' if threads != 1 else ''}"
        )


def get_profile(name: str | None = None, device: str | None = None) -> Profile:
    """The run profile: ``name`` if given, else ``$GANLAB_PROFILE``, else by the hardware."""
    source = "argument"
    if name is None:
        name = os.environ.get("GANLAB_PROFILE") or None
        source = "GANLAB_PROFILE"
    dev = pick_device(device)
    if name is None:
        name = "gpu" if dev.type == "cuda" else "cpu"
        source = "auto"
    name = name.strip().lower()
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: expected one of {', '.join(PROFILES)}")
    return Profile(name=name, device=dev, source=source)


def show_profile(name: str | None = None) -> Profile:
    """Print and return the profile; every notebook and command starts with this."""
    profile = get_profile(name)
    print(profile.describe())
    return profile
