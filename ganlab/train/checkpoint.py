"""Checkpoints and shipped weights: safetensors only, written atomically, checked on load.

A file holds flat tensors plus a JSON document in the safetensors header (key ``ganlab``):
what model and config wrote it, the step, metrics. ``save_state`` writes to a temporary file
in the same folder, flushes it to disk and renames it over the target, so a failed save never
destroys the last good file. A readable ``.json`` copy of the metadata sits beside it.

Nothing here unpickles: safetensors stores raw tensors and a JSON header, nothing executable.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ganlab.errors import CheckpointError

META_KEY = "ganlab"


def _atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``; clean up on any failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_state(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], meta: dict) -> Path:
    """Write ``tensors`` and ``meta`` to ``path`` (a ``.safetensors`` file) atomically."""
    path = Path(path)
    bad = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"save_state takes tensors only; not tensors: {bad[:5]}")
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    header = {META_KEY: json.dumps(meta, sort_keys=True)}
    _atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=header))
    sidecar = path.with_suffix(".json")
    text = json.dumps(meta, indent=2, sort_keys=True) + "\n"
    _atomic_write(sidecar, lambda tmp: Path(tmp).write_text(text))
    return path


def read_meta(path: str | os.PathLike) -> dict:
    """The metadata of a ganlab safetensors file, without loading its tensors."""
    path = _existing(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path} is not a readable safetensors file (truncated or corrupt?): {exc}"
        ) from exc
    if META_KEY not in header:
        raise CheckpointError(f"{path} has no ganlab metadata: it was not written by ganlab")
    return json.loads(header[META_KEY])


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: expected a .safetensors file at {path}")
    return path


def load_state(
    path: str | os.PathLike, expect: Mapping[str, Any] | None = None
) -> tuple[dict[str, torch.Tensor], dict]:
    """Load tensors and metadata; ``expect`` lists metadata values that must match.

    For example ``expect={"model": "cgan.ConvGenerator", "config": {...}}`` rejects a
    checkpoint of another model or width with a message naming both.
    """
    meta = read_meta(path)
    for key, want in (expect or {}).items():
        got = meta.get(key)
        if got != want:
            raise CheckpointError(
                f"{path} was written for {key}={got!r}, but {key}={want!r} was expected: "
                "it belongs to another model or configuration"
            )
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} could not be read (truncated or corrupt?): {exc}") from exc
    return tensors, meta


def module_tensors(module: torch.nn.Module, prefix: str) -> dict[str, torch.Tensor]:
    """A module's parameters and buffers, keys prefixed (``G.net.0.weight``)."""
    return {f"{prefix}.{k}": v for k, v in module.state_dict().items()}


def load_module(module: torch.nn.Module, tensors: Mapping[str, torch.Tensor], prefix: str) -> None:
    """Copy ``prefix.*`` tensors into ``module``, naming every missing or misshapen key."""
    own = module.state_dict()
    sub = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    missing = sorted(set(own) - set(sub))
    unexpected = sorted(set(sub) - set(own))
    shapes = [
        f"{k}: file {tuple(sub[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in sub and sub[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"checkpoint does not fit {type(module).__name__} ({prefix}): "
            f"missing {missing[:5]}, unexpected {unexpected[:5]}, shape mismatches {shapes[:5]}"
        )
    module.load_state_dict(sub)


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> tuple[dict, dict]:
    """Flatten an optimiser's state into tensors plus a JSON-able description."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            key = f"{prefix}.state.{idx}.{name}"
            if isinstance(value, torch.Tensor):
                tensors[key] = value
            else:
                scalars[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(
    opt: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor], described: dict, prefix: str
) -> None:
    """Rebuild an optimiser's state from ``optimizer_tensors``' output."""
    state: dict[int, dict] = {}
    start = prefix + ".state."
    for key, value in tensors.items():
        if key.startswith(start):
            idx, name = key[len(start) :].split(".", 1)
            state.setdefault(int(idx), {})[name] = value
    for key, value in described.get("scalars", {}).items():
        idx, name = key[len(start) :].split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = described["param_groups"]
    if len(groups) != len(opt.param_groups):
        raise CheckpointError(f"optimiser {prefix}: {len(groups)} param groups in file")
    opt.load_state_dict({"state": state, "param_groups": groups})
