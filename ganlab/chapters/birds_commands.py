"""What ``ganlab train/sample/ship`` do the same way for the text-to-image chapters (2 to 4)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch

from ganlab.train import checkpoint as ckpt

DEFAULT_CAPTIONS = (
    "a small bird with a red crown, blue wings and a white belly",
    "this bird has a yellow breast, black wings and a short pointed beak",
)


def finish_training(args, chapter: str, profile, trainer, result, export, **extra) -> dict:
    """After ``trainer.fit()``: the manifest of the run, and (main process) its exported
    generator ``OUT/generator.safetensors`` written by ``export(trainer, path, manifest)``."""
    weights = Path(trainer.cfg.out) / "generator.safetensors"
    manifest = {
        "chapter": chapter,
        **extra,
        "profile": profile.name,
        "command": " ".join(["ganlab", *getattr(args, "argv", ["train", chapter])]),
        "steps": result.step,
        "seconds": round(trainer.seconds, 1),
        "device": str(trainer.device),
    }
    if trainer.dist.is_main:
        export(trainer, weights, manifest)
        print(f"checkpoint: {result.checkpoint}\ngenerator: {weights}")
    return {"checkpoint": result.checkpoint, "generator": str(weights), **manifest}


def sample_grid(args, generate: Callable[[list[str], int], torch.Tensor], out: str) -> str:
    """``ganlab sample``: ``args.n`` images per ``--caption`` (or two defaults), one row each."""
    from ganlab.viz.grids import save_grid

    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    captions = args.caption or list(DEFAULT_CAPTIONS)
    images = torch.cat([generate([c] * args.n, args.seed) for c in captions])
    out = args.out or out
    save_grid(images, out, nrow=args.n)
    print(f"wrote {len(images)} samples ({len(captions)} captions x {args.n}) to {out}")
    return out


def ship_weights(source, target: str, metrics: dict, n: int, half: bool, **extra) -> Path:
    """Copy exported weights into ``ganlab/weights/TARGET`` with the metrics measured at
    shipping time (float16 when ``half``), their checksum and the index."""
    from ganlab.weights import HERE, write_index, write_manifest_sha256

    tensors, meta = ckpt.load_state(source)
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    manifest = {
        **meta.get("manifest", {}),
        "metrics": metrics,
        "n_eval": n,
        **extra,
        "stored_dtype": "float16" if half else "float32",
    }
    path = ckpt.save_state(HERE / f"{target}.safetensors", tensors, {**meta, "manifest": manifest})
    write_manifest_sha256(path)
    write_index()
    print(f"shipped {path}: {json.dumps(metrics)}")
    return path
