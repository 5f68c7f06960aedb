"""Shipped weights: small safetensors files trained by the course's own code.

Each ``NAME.safetensors`` here has a sidecar ``NAME.json`` holding the same metadata as the
file's header (model, config, ``manifest``: chapter, profile, command, steps, seconds,
device, metrics at save time...) plus ``"sha256"``, the checksum of the safetensors file.

``ganlab.train.checkpoint.save_state`` writes the sidecar from the metadata and the checksum
of the file it has just written (every file it saves, shipped or not, has one);
:func:`write_manifest_sha256` records it again for files changed by other means.

Checksums are checked on load (:func:`verify_file`, called by ``checkpoint.load_state``):
shipped weights always, against their sidecar and the index ``manifest.json``; any other file
against its sidecar when the sidecar describes it. Hashing reads the whole file, so each
result is cached per (path, size, modification time): loading the same weights again is free.
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


_SHA_CACHE: dict[tuple, str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """:func:`sha256_of`, cached per file version: (resolved path, inode, size, modification
    and change times in ns). A file rewritten or replaced gets a new key, hence a fresh hash."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = sha256_of(path)
    return _SHA_CACHE[key]


def is_shipped(path: str | os.PathLike) -> bool:
    """Whether ``path`` lies in the package's weights folder."""
    return Path(path).resolve().parent == Path(HERE).resolve()


def _read_json(path: Path, what: str) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{what} {path} is unreadable or not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CheckpointError(f"{what} {path} is not a JSON object")
    return doc


def recorded_sha256(path: str | os.PathLike, meta: dict) -> list[tuple[Path, str]]:
    """Every checksum recorded for the safetensors file ``path`` (whose metadata is ``meta``),
    as (where it is recorded, hex sha256) pairs.

    * Shipped weights: their sidecar must exist and record one, and ``manifest.json`` too if
      it lists the file.
    * Other files: the sidecar ``NAME.json``, if present and describing this very file (its
      metadata equals the file's). A sidecar that describes another save is not evidence of
      corruption: a save renames the safetensors file first and rewrites the sidecar just
      after, so a kill between the two leaves the previous save's sidecar.
    """
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if is_shipped(path):
        if not sidecar.is_file():
            raise CheckpointError(
                f"shipped weights {path} have no sidecar manifest {sidecar}: cannot check them"
            )
        want = _read_json(sidecar, "the manifest").get("sha256")
        if not want:
            raise CheckpointError(f"the manifest {sidecar} records no sha256 for {path.name}")
        found = [(sidecar, want)]
        idx = Path(HERE) / INDEX.name
        if idx.is_file():
            entry = _read_json(idx, "the index").get(path.stem)
            if isinstance(entry, dict) and entry.get("sha256"):
                found.append((idx, entry["sha256"]))
        return found
    if not sidecar.is_file():
        return []
    try:
        doc = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return []  # not ours, or damaged: it vouches for nothing
    if not isinstance(doc, dict) or not doc.get("sha256"):
        return []
    want = doc.pop("sha256")
    return [(sidecar, want)] if doc == meta else []


def verify_file(path: str | os.PathLike, meta: dict) -> str | None:
    """Check ``path`` against every checksum recorded for it (:func:`recorded_sha256`).

    Returns the file's sha256, or None when nothing records one; raises ``CheckpointError``
    naming the file, the record, the expected and the actual hash on a mismatch.
    """
    records = recorded_sha256(path, meta)
    if not records:
        return None
    got = file_sha256(path)
    for where, want in records:
        if got != want:
            raise CheckpointError(
                f"{path} does not match the checksum recorded in {where}: expected sha256 "
                f"{want}, got {got}. The file is corrupt or was changed after it was saved; "
                "restore it (shipped weights: reinstall ganlab) or train again"
            )
    return got


def write_manifest_sha256(path: str | os.PathLike) -> str:
    """Record the sha256 of the safetensors file ``path`` in its sidecar ``.json``; return it."""
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        raise CheckpointError(f"{path} has no sidecar {sidecar}: save it with save_state first")
    doc = json.loads(sidecar.read_text())
    doc["sha256"] = sha256_of(path)
    from ganlab.atomic import atomic_write_text

    atomic_write_text(sidecar, json.dumps(doc, indent=2, sort_keys=True) + "\n")  # never half
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
    from ganlab.atomic import atomic_write_text

    return atomic_write_text(INDEX, json.dumps(index(), indent=2, sort_keys=True) + "\n")
