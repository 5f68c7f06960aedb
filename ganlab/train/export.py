"""One way to export and load every chapter's generator: the weights rebuild their own model.

An exported file (``save_generator``) holds the generator's tensors under ``G.*`` and, in the
safetensors header, a :class:`ModelSpec`: the model's class and the keyword arguments its
constructor was called with (a nested spec where an argument is itself a model, as
StackGAN's Stage-II takes its Stage-I)::

    {"generator": {"class": "ganlab.models.cgan.ConvGenerator",
                   "kwargs": {"z_dim": 64, "width": 32}}, "chapter": "cgan", ...}

:func:`load_generator` rebuilds the model from that spec and copies the tensors in: no
chapter needs a loader of its own. A training checkpoint carries the same spec, and its
generator is the EMA copy (``ema.G.*``) when one was kept.

Only classes defined under ``ganlab.models`` can be named in a spec, and the arguments are
plain JSON values: loading a file never runs code the file names.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganlab.errors import CheckpointError
from ganlab.train import checkpoint as ckpt

ALLOWED_PREFIX = "ganlab.models."  # a spec may only name a model class of the course
SPEC_KEY = "generator"  # the header key of the generator's spec


@dataclass(frozen=True)
class ModelSpec:
    """A model's class and constructor arguments; ``build()`` makes a fresh model from them.

    ``kwargs`` values are JSON values or nested :class:`ModelSpec` (built first, in order).
    """

    cls: str  # "ganlab.models.cgan.ConvGenerator"
    kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, model_cls: type[nn.Module], **kwargs) -> ModelSpec:
        """The spec of ``model_cls(**kwargs)``."""
        return cls(f"{model_cls.__module__}.{model_cls.__qualname__}", kwargs)

    def build(self) -> nn.Module:
        """Call the constructor; nested specs are built first, in argument order."""
        args = {k: v.build() if isinstance(v, ModelSpec) else v for k, v in self.kwargs.items()}
        return resolve(self.cls)(**args)

    def to_json(self) -> dict:
        kwargs = {k: v.to_json() if isinstance(v, ModelSpec) else v for k, v in self.kwargs.items()}
        return {"class": self.cls, "kwargs": kwargs}

    @classmethod
    def from_json(cls, doc: Any, where: str = "weights") -> ModelSpec:
        """Parse a spec read from a header; a clear error for anything else."""
        if not isinstance(doc, dict) or set(doc) != {"class", "kwargs"}:
            raise CheckpointError(
                f"{where}: a model spec must be {{'class': ..., 'kwargs': {{...}}}}, got {doc!r}"
            )
        if not isinstance(doc["class"], str) or not isinstance(doc["kwargs"], dict):
            raise CheckpointError(f"{where}: malformed model spec {doc!r}")
        kwargs = {
            k: cls.from_json(v, where) if isinstance(v, dict) and "class" in v else v
            for k, v in doc["kwargs"].items()
        }
        return cls(doc["class"], kwargs)


def resolve(path: str) -> type[nn.Module]:
    """The model class named ``ganlab.models.<module>.<Class>``; nothing outside it."""
    module, _, name = path.rpartition(".")
    if not path.startswith(ALLOWED_PREFIX) or not module or not name.isidentifier():
        raise CheckpointError(
            f"model class {path!r} is not a ganlab model: expected {ALLOWED_PREFIX}<module>.<Class>"
        )
    try:
        found = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise CheckpointError(f"model class {path!r} does not exist in this ganlab") from exc
    if not (isinstance(found, type) and issubclass(found, nn.Module)):
        raise CheckpointError(f"{path!r} is not a torch module class")
    return found


def generator_prefix(tensors: dict, meta: dict) -> str:
    """``ema.G`` for a checkpoint that kept an EMA generator, else ``G``."""
    has_ema = any(k.startswith("ema.G.") for k in tensors)
    return "ema.G" if meta.get("kind") == "checkpoint" and has_ema else "G"


def save_generator(path: str | os.PathLike, G: nn.Module, spec: ModelSpec, meta: dict) -> Path:
    """Write ``G``'s tensors as ``G.*`` with ``meta`` (chapter, model, config, manifest...)
    and the spec that rebuilds it, atomically (``checkpoint.save_state``)."""
    header = {**meta, "kind": "weights", SPEC_KEY: spec.to_json()}
    return ckpt.save_state(path, ckpt.module_tensors(G, "G"), header)


def load_generator(
    path: str | os.PathLike, chapter: str | None = None, device="cpu"
) -> tuple[nn.Module, dict]:
    """The generator of exported weights or of a checkpoint (its EMA copy), in eval mode.

    ``chapter``: refuse the weights of another chapter, naming both.
    """
    meta = ckpt.read_meta(path)
    if chapter is not None and meta.get("chapter") != chapter:
        raise CheckpointError(f"{path} holds chapter {meta.get('chapter')!r}, not {chapter!r}")
    if SPEC_KEY not in meta:
        raise CheckpointError(
            f"{path} has no model spec ({SPEC_KEY!r} in its header): it was written by an "
            "older ganlab; export it again with this version"
        )
    G = ModelSpec.from_json(meta[SPEC_KEY], str(path)).build()
    tensors, meta = ckpt.load_state(path)
    ckpt.load_module(G, tensors, generator_prefix(tensors, meta))
    return G.to(device).eval(), meta


@torch.no_grad()
def half_precision(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Floating tensors as float16 (shipped comparison models: half the bytes)."""
    return {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
