"""Checkpoints and shipped weights: safetensors only, written atomically, checked on load.

A file holds flat tensors plus a JSON document in the safetensors header (key ``ganlab``):
what model and config wrote it, the step, metrics. ``save_state`` writes to a temporary file
in the same folder, flushes it to disk and renames it over the target, so a failed save never
destroys the last good file. A readable ``.json`` copy of the metadata sits beside it (the
*sidecar*), with ``"sha256"``, the checksum of the safetensors file.

On load, three things are checked before a tensor is used:

* the header: valid JSON, a JSON object, numbers in ``config`` non-negative and finite (a
  missing key read later names the file and the key, not a bare ``KeyError``);
* the checksum, against the sidecar (and, for shipped weights, ``manifest.json``): a flipped
  bit is refused with the file, the expected and the actual sha256;
* the values: a file holding NaN or inf is refused (training had diverged when it was saved),
  and ``save_state`` never writes one, so "the last good checkpoint" is always good.

Nothing here unpickles: safetensors stores raw tensors and a JSON header, nothing executable.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ganlab.atomic import atomic_write as _atomic_write
from ganlab.atomic import atomic_write_text
from ganlab.errors import CheckpointError, NonFiniteLossError
from ganlab.weights import file_sha256, verify_file

META_KEY = "ganlab"

# Temporary files are named TARGET.ganlab-XXXXXXXX.tmp (8 random characters from mkstemp), so
# that the orphans a killed save leaves behind can be told from anyone else's files.
ORPHAN_TMP = re.compile(r"^(?P<target>.+)\.ganlab-[a-z0-9_]{8}\.tmp$")
# ...and the names older versions used for a run's own files (TARGET.XXXXXXXX.tmp).
LEGACY_TMP = re.compile(r"^(checkpoint|generator)\.(safetensors|json)\.[a-z0-9_]{8}\.tmp$")


def remove_orphan_tmp(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files a killed save left in ``folder``; return what was removed.

    Only ganlab's own names are touched (``TARGET.ganlab-XXXXXXXX.tmp``, and the older
    ``checkpoint|generator.safetensors|json.XXXXXXXX.tmp``): a temporary file is never a
    complete good file, since the rename is the last step of a save.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for p in sorted(folder.iterdir()):
        if (ORPHAN_TMP.match(p.name) or LEGACY_TMP.match(p.name)) and p.is_file():
            try:
                p.unlink()
            except FileNotFoundError:  # removed meanwhile
                continue
            removed.append(p)
    return removed


def nonfinite_tensors(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    """The names of the floating-point tensors holding a NaN or an inf."""
    return [
        k
        for k, v in tensors.items()
        if v.is_floating_point() and v.numel() and not bool(torch.isfinite(v).all())
    ]


def describe_kept(path: str | os.PathLike | None) -> str:
    """``PATH (step N)`` for a checkpoint on disk, or why there is none: for error messages."""
    if path is None:
        return "none (no --out folder was given)"
    path = Path(path)
    if not path.is_file():
        return f"none yet (no checkpoint had been written to {path})"
    try:
        step = read_meta(path).get("step")
    except CheckpointError:
        return f"{path} (unreadable)"
    return f"{path} (step {step})" if step is not None else str(path)


def save_state(path: str | os.PathLike, tensors: Mapping[str, torch.Tensor], meta: dict) -> Path:
    """Write ``tensors`` and ``meta`` to ``path`` (a ``.safetensors`` file) atomically.

    Refuses (``NonFiniteLossError``, the old file kept) when a floating-point tensor holds
    NaN or inf. The sidecar ``.json`` gets the metadata plus the file's ``sha256``.
    """
    path = Path(path)
    bad = [k for k, v in tensors.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"save_state takes tensors only; not tensors: {bad[:5]}")
    flat = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    bad = nonfinite_tensors(flat)
    if bad:
        when = f" by step {meta['step']}" if "step" in meta else ""
        raise NonFiniteLossError(
            f"training diverged{when}: {len(bad)} tensor(s) hold NaN/inf ({', '.join(bad[:5])}), "
            f"so {path} was not written. Last good file kept: {describe_kept(path)}"
        )
    header = {META_KEY: json.dumps(meta, sort_keys=True)}
    _atomic_write(path, lambda tmp: save_file(flat, tmp, metadata=header))
    doc = {**meta, "sha256": file_sha256(path)}
    atomic_write_text(path.with_suffix(".json"), json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return path


class MissingMetadataError(CheckpointError, KeyError):
    """A key a loader needs is absent from a file's ganlab metadata (a hand-made header?)."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class Metadata(dict):
    """A file's ganlab metadata: a dict whose missing keys raise an error naming the file.

    ``meta["config"]["width"]`` on a header without them says which file lacks which key,
    instead of a bare ``KeyError: 'config'``.
    """

    def __init__(self, data: Mapping, path: Path, where: str = "") -> None:
        super().__init__((k, _wrap(v, path, f"{where}{k}.")) for k, v in data.items())
        self._path, self._where = path, where

    def __missing__(self, key):
        have = ", ".join(sorted(map(str, self))) or "none"
        raise MissingMetadataError(
            f"{self._path}: its ganlab metadata has no {self._where + str(key)!r} entry (it has: "
            f"{have}); ganlab writes it when it saves this kind of file: was the header made "
            "or edited by hand, or written by another version?"
        )


def _wrap(value, path: Path, where: str):
    if isinstance(value, dict):
        return Metadata(value, path, where)
    if isinstance(value, list):
        return [_wrap(v, path, where) for v in value]
    return value


def _check_numbers(path: Path, value, where: str) -> None:
    """Sizes, rates and weights in a config are finite and non-negative: say which is not."""
    if isinstance(value, dict):
        for k, v in value.items():
            _check_numbers(path, v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_numbers(path, v, f"{where}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise CheckpointError(
                f"{path}: {where} is {value!r}, but every number in a model's config (a width, "
                "a size, a rate, a loss weight) must be finite and non-negative: was the "
                "header edited by hand?"
            )


def _check_header(path: Path, meta) -> None:
    if not isinstance(meta, dict):
        raise CheckpointError(
            f"{path}: its ganlab metadata is a JSON {type(meta).__name__}, but a JSON object "
            '({"kind": ..., "config": {...}, ...}) was expected'
        )
    if "config" in meta:
        if not isinstance(meta["config"], dict):
            raise CheckpointError(
                f"{path}: its metadata's config is {meta['config']!r}, but a JSON object of the "
                "model's constructor arguments was expected"
            )
        _check_numbers(path, meta["config"], "config")
    spec = meta.get("generator")
    if isinstance(spec, dict) and isinstance(spec.get("kwargs"), dict):  # the model's arguments
        _check_numbers(path, spec["kwargs"], "generator.kwargs")
    if meta.get("kind") == "checkpoint":
        step = meta.get("step")
        if not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise CheckpointError(
                f"{path}: a checkpoint's step must be a non-negative integer, got {step!r}"
            )


def read_meta(path: str | os.PathLike) -> Metadata:
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
    try:
        meta = json.loads(header[META_KEY])
    except ValueError as exc:
        raise CheckpointError(
            f"{path}: its ganlab metadata (the safetensors header's {META_KEY!r} entry) is not "
            f"valid JSON ({exc}); expected the JSON object ganlab writes: was it edited by hand?"
        ) from exc
    _check_header(path, meta)
    return Metadata(meta, path)


def _existing(path: str | os.PathLike) -> Path:
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: expected a .safetensors file at {path}")
    return path


def load_state(
    path: str | os.PathLike, expect: Mapping[str, Any] | None = None
) -> tuple[dict[str, torch.Tensor], Metadata]:
    """Load tensors and metadata; ``expect`` lists metadata values that must match.

    For example ``expect={"model": "cgan.ConvGenerator", "config": {...}}`` rejects a
    checkpoint of another model or width with a message naming both. The file is checked
    against its recorded sha256 (:func:`ganlab.weights.verify_file`) and refused if it holds
    NaN or inf.
    """
    meta = read_meta(path)
    for key, want in (expect or {}).items():
        got = meta.get(key)
        if got != want:
            raise CheckpointError(
                f"{path} was written for {key}={got!r}, but {key}={want!r} was expected: "
                "it belongs to another model or configuration"
            )
    verify_file(path, meta)
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path} could not be read (truncated or corrupt?): {exc}") from exc
    bad = nonfinite_tensors(tensors)
    if bad:
        raise CheckpointError(
            f"{path} holds NaN/inf values in {len(bad)} tensor(s) ({', '.join(bad[:5])}): "
            "training had diverged when it was written, so it can be neither resumed nor "
            "sampled from. Use an earlier checkpoint, or train again (a lower learning rate?)"
        )
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
