"""Atomic file writes: a reader, or a crash at any instant, sees the old file or the new one.

The one low-level place for it, below both ``ganlab.weights`` and ``ganlab.train``.
Temporary files are named ``TARGET.ganlab-XXXXXXXX.tmp`` so that the orphans a killed
write leaves behind can be told from anyone else's files.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

TMP_MARK = ".ganlab-"


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entry list, so that a rename survives a power cut (POSIX only)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open a folder
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, fsync, then rename over ``path``; clean up on any failure.

    A reader (or a crash at any instant) sees either the old file or the new one, never half
    of one: ``os.replace`` is atomic within a folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + TMP_MARK, suffix=".tmp", dir=path.parent)
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
    fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file atomically (temporary file, fsync, rename)."""
    path = Path(path)
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path
