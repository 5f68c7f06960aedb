"""Shipped weights: small safetensors files trained by the course's own code.

Each ``NAME.safetensors`` here has a sidecar ``NAME.json`` holding the same metadata as the
file's header (model, config, ``manifest``: chapter, profile, command, steps, seconds,
device, metrics at save time...) plus ``"sha256"``, the checksum of the safetensors file.

``ganlab.train.checkpoint.save_state`` writes the sidecar from the metadata; the checksum can
only be known once the file exists, so whoever ships weights calls
:func:`write_manifest_sha256` right after saving.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ganlab.errors import CheckpointError

HERE = Path(__file__).resolve().parent


def shipped(name: str) -> Path:
    """The path of the shipped weights ``NAME.safetensors``; a clear error if absent."""
    path = HERE / f"{name}.safetensors"
    if not path.is_file():
        have = sorted(p.stem for p in HERE.glob("*.safetensors"))
        raise CheckpointError(f"no shipped weights {name!r}: expected {path}; shipped: {have}")
    return path


def sha256_of(path: str | os.PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_manifest_sha256(path: str | os.PathLike) -> str:
    """Record the sha256 of the safetensors file ``path`` in its sidecar ``.json``; return it."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise CheckpointError(f"{path} has no sidecar {sidecar}: save it with save_state first")
    doc = json.loads(sidecar.read_text())
    doc["sha256"] = sha256_of(path)
    tmp = sidecar.with_name(sidecar.name + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, sidecar)  # atomic: a reader never sees half a file
    return doc["sha256"]


def manifest(name: str) -> dict:
    """The sidecar JSON of shipped weights ``name``: metadata, ``manifest`` and ``sha256``."""
    sidecar = shipped(name).with_suffix(".json")
    if not sidecar.is_file():
        raise CheckpointError(f"shipped weights {name!r} have no sidecar manifest {sidecar}")
    return json.loads(sidecar.read_text())


def verify_sha256(name: str) -> str:
    """Check shipped weights ``name`` against the sha256 in their manifest; return it."""
    want = manifest(name).get("sha256")
    if not want:
        raise CheckpointError(f"the manifest of {name!r} records no sha256")
    got = sha256_of(shipped(name))
    if got != want:
        raise CheckpointError(
            f"shipped weights {name!r} are corrupt or were replaced: sha256 {got}, "
            f"manifest says {want}"
        )
    return got


INDEX = HERE / "manifest.json"


def index() -> dict:
    """One entry per shipped file: its sha256 and its manifest (what ``manifest.json`` holds)."""
    entries = {}
    for path in sorted(HERE.glob("*.safetensors")):
        doc = json.loads(path.with_suffix(".json").read_text())
        entries[path.stem] = {
            "file": path.name,
            "sha256": doc.get("sha256"),
            "kind": doc.get("kind"),
            "model": doc.get("model"),
            "manifest": doc.get("manifest", {}),
        }
    return entries


def write_index() -> Path:
    """Rewrite ``manifest.json``, the index of every shipped file, atomically."""
    tmp = INDEX.with_name(INDEX.name + ".tmp")
    tmp.write_text(json.dumps(index(), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, INDEX)
    return INDEX


def ship(source: str | os.PathLike, name: str, manifest_update: dict) -> Path:
    """Copy trained weights into the package as ``NAME.safetensors`` with their manifest.

    ``manifest_update`` adds what is known only after training (e.g. the metrics measured
    at save time); the checksum and the index are written last.
    """
    from ganlab.train.checkpoint import load_state, save_state

    tensors, meta = load_state(source)
    meta = {**meta, "manifest": {**meta.get("manifest", {}), **manifest_update}}
    path = save_state(HERE / f"{name}.safetensors", tensors, meta)
    os.chmod(path, 0o644)
    write_manifest_sha256(path)
    write_index()
    return path
