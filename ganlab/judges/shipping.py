"""Saving and loading a judge: one path for every world's judge.

A judge file holds the network's tensors under ``judge.*`` and, in its header, the judge's
model name, its constructor arguments (``config``) and a manifest (how it was trained and
what it scored). ``save_judge`` writes the file and its checksum; ``load_judge`` checks the
model name, rebuilds the network from ``config`` and returns it frozen, in eval mode, in
float32 (a float16 file is widened on load).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ganlab.train import checkpoint as ckpt


def save_judge(
    judge: nn.Module, path, model: str, manifest: dict, *, float16: bool = False
) -> Path:
    """Write ``judge`` (its ``config`` attribute rebuilds it) with ``manifest``; return the path.

    ``manifest`` gets the date and torch version added; ``float16`` stores the tensors rounded
    (measure the rounded judge before saving). A file written into the shipped weights folder
    also refreshes that folder's index.
    """
    from ganlab.weights import HERE, write_index, write_manifest_sha256

    manifest = {
        **manifest,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
    }
    tensors = ckpt.module_tensors(judge, "judge")
    if float16:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
        manifest["stored_dtype"] = "float16"
    meta = {"kind": "judge", "model": model, "config": judge.config, "manifest": manifest}
    path = ckpt.save_state(path, tensors, meta)
    os.chmod(path, 0o644)
    write_manifest_sha256(path)
    if path.resolve().parent == HERE.resolve():  # shipped: the index changes too
        write_index()
    return path


def load_judge(
    path, shipped_name: str, model: str, build: Callable[[dict], nn.Module], device="cpu"
) -> nn.Module:
    """The judge at ``path`` (default: the shipped ``shipped_name``), frozen, in eval mode.

    ``build(config)`` makes a fresh network from the header's constructor arguments; a file
    holding another model is refused with its name.
    """
    if path is None:
        from ganlab.weights import shipped

        path = shipped(shipped_name)
    meta = ckpt.read_meta(path)
    if meta.get("model") != model:
        raise ckpt.CheckpointError(f"{path} holds {meta.get('model')!r}, not a {model}")
    tensors, _ = ckpt.load_state(
        path, expect={"model": model, "kind": "judge", "config": meta["config"]}
    )
    judge = build(meta["config"])
    tensors = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    ckpt.load_module(judge, tensors, "judge")
    return judge.to(device).eval().requires_grad_(False)
