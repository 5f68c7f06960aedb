"""A training run's folder (``--out``): checked before the first step, and saved into on time.

``Trainer.fit()`` calls :func:`prepare_run` before it trains, so that every problem with the
folder shows in the first seconds instead of a quarter into the run, at the first checkpoint:

* a folder that already holds a run is refused unless the run is resumed (``--resume``) or
  deliberately replaced (``--overwrite``): starting again silently would replace its
  checkpoint;
* ``--out`` must be a folder ganlab can create and write in, with room for a checkpoint (a
  test file is written, flushed and removed);
* temporary files left by a save that was killed are removed (only ganlab's own names).

:class:`CheckpointClock` adds a time-based interval to the step-based one: a long run on a
slow machine is saved every ``checkpoint_minutes`` (default 10), however many steps that is.

The command line sets the defaults of ``TrainConfig.overwrite`` and
``TrainConfig.checkpoint_minutes`` with :func:`command_line_options` (a context variable), so
that its flags reach the loop through any chapter's own code.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ganlab.atomic import TMP_MARK
from ganlab.errors import GanLabError
from ganlab.train.checkpoint import describe_kept, remove_orphan_tmp

RUN_FILES = ("checkpoint.safetensors", "generator.safetensors")  # what a run writes
FILE_SUFFIXES = (".safetensors", ".json", ".png", ".jpg", ".pt", ".pth", ".ckpt")
DEFAULT_CHECKPOINT_MINUTES = 10.0


class RunFolderError(GanLabError, OSError):
    """``--out`` cannot hold a run: not a folder, not writable, or too little space."""


class RunExistsError(GanLabError, FileExistsError):
    """``--out`` already holds a run, and neither ``--resume`` nor ``--overwrite`` was given."""


# ---------------------------------------------------------------- command-line defaults
@dataclass(frozen=True)
class RunOptions:
    overwrite: bool = False
    checkpoint_minutes: float = DEFAULT_CHECKPOINT_MINUTES


_DEFAULTS = RunOptions()
_OPTIONS: contextvars.ContextVar[RunOptions | None] = contextvars.ContextVar(
    "ganlab_run_options", default=None
)


def _current() -> RunOptions:
    return _OPTIONS.get() or _DEFAULTS


def default_overwrite() -> bool:
    """``TrainConfig.overwrite``'s default: False, or ``--overwrite`` on the command line."""
    return _current().overwrite


def default_checkpoint_minutes() -> float:
    """``TrainConfig.checkpoint_minutes``' default: 10, or ``--checkpoint-minutes``."""
    return _current().checkpoint_minutes


@contextlib.contextmanager
def command_line_options(overwrite: bool = False, checkpoint_minutes: float | None = None):
    """Within the block, new ``TrainConfig`` objects default to these values."""
    minutes = DEFAULT_CHECKPOINT_MINUTES if checkpoint_minutes is None else checkpoint_minutes
    check_minutes(minutes, "--checkpoint-minutes")
    token = _OPTIONS.set(RunOptions(bool(overwrite), float(minutes)))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def check_minutes(minutes, name: str = "checkpoint_minutes") -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not minutes >= 0:
        raise ValueError(
            f"{name} must be a number of minutes >= 0 (0: only the step-based checkpoints), "
            f"got {minutes!r}"
        )


# ---------------------------------------------------------------- the folder
def check_out_folder(folder: str | os.PathLike) -> Path:
    """Create ``folder`` if needed and prove that a file can be written in it.

    Raises :class:`RunFolderError` naming the folder and what was expected.
    """
    folder = Path(folder).expanduser()
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(
            f"--out {folder} is a file, but a folder was expected (it will hold "
            f"{' and '.join(RUN_FILES)})"
        )
    if not folder.exists() and folder.suffix.lower() in FILE_SUFFIXES:
        raise RunFolderError(
            f"--out {folder} looks like a file name, but --out names the run's folder (it will "
            f"hold {' and '.join(RUN_FILES)}); for example --out {folder.with_suffix('')}"
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (OSError, ValueError) as exc:
        raise RunFolderError(
            f"cannot create the run folder --out {folder}: {getattr(exc, 'strerror', None) or exc}"
            "; expected a folder path ganlab may create and write in"
        ) from exc
    probe = None
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test" + TMP_MARK, suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(b"ganlab write test\n")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise RunFolderError(
            f"cannot write in the run folder --out {folder}: {exc.strerror or exc}; choose a "
            "folder you may write in"
        ) from exc
    finally:
        if probe is not None and os.path.exists(probe):
            os.unlink(probe)
    return folder


def checkpoint_bytes(trainer) -> int:
    """About how many bytes a checkpoint of ``trainer`` takes: its tensors now, plus Adam's
    two moments per parameter, which appear only after the first step."""
    tensors, _ = trainer.state_tensors()
    now = sum(t.numel() * t.element_size() for t in tensors.values())
    moments = sum(
        2 * p.numel() * p.element_size()
        for opt in trainer.opts.values()
        for group in opt.param_groups
        for p in group["params"]
        if not opt.state.get(p)
    )
    return now + moments


def check_free_space(folder: Path, need: int) -> None:
    """A save holds the new temporary file beside the old one: room for two is needed."""
    free = shutil.disk_usage(folder).free
    if free < 2 * need:
        raise RunFolderError(
            f"only {free / 2**20:.1f} MiB free in --out {folder}, but a checkpoint takes about "
            f"{need / 2**20:.1f} MiB and a save briefly needs room for two: free some space "
            "or choose another folder"
        )


def prepare_run(trainer) -> None:
    """What ``Trainer.fit()`` checks before its first step (nothing when there is no ``out``).

    ``trainer`` gives ``cfg`` (``out``, ``resume``, ``overwrite``, ``checkpoint_minutes``),
    ``checkpoint_path``, ``step``, ``dist`` and ``state_tensors()``.
    """
    cfg = trainer.cfg
    check_minutes(cfg.checkpoint_minutes)
    if cfg.resume and cfg.overwrite:
        raise ValueError(
            "--resume continues the run in --out and --overwrite replaces it: give one of them"
        )
    path = trainer.checkpoint_path
    if path is None:
        return
    folder = Path(path).parent
    existing = [folder / name for name in RUN_FILES if (folder / name).is_file()]
    fresh = not cfg.resume and trainer.step == 0  # a Trainer fitted again continues its run
    if fresh and existing and not cfg.overwrite:
        raise RunExistsError(
            f"{folder} already holds a training run (checkpoint: {describe_kept(path)}; files: "
            f"{', '.join(p.name for p in existing)}); training from step 0 would replace it. "
            "Continue it with --resume, replace it with --overwrite, or choose another --out "
            "(in Python: TrainConfig(resume=True) or TrainConfig(overwrite=True))"
        )
    if not trainer.dist.is_main:
        return  # only the main process writes
    check_out_folder(folder)
    check_free_space(folder, checkpoint_bytes(trainer))
    for orphan in remove_orphan_tmp(folder):
        print(f"removed {orphan}, left by a save that was interrupted")
    if fresh and existing:
        print(f"--overwrite: the run in {folder} will be replaced at the first checkpoint")


# ---------------------------------------------------------------- when to save
class CheckpointClock:
    """Says when ``minutes`` of wall-clock time have passed since the last save.

    ``minutes=0`` turns the time-based interval off. Reading the clock costs well under a
    microsecond and never syncs with the device, so the loop asks after every step.
    """

    def __init__(self, minutes: float, clock=time.monotonic) -> None:
        check_minutes(minutes)
        self.seconds = 60.0 * minutes
        self.clock = clock
        self.last = clock()

    def due(self) -> bool:
        return self.seconds > 0 and self.clock() - self.last >= self.seconds

    def reset(self) -> None:
        self.last = self.clock()
