"""Ctrl-C during training: finish the current step, save a checkpoint, say how to resume.

A ``KeyboardInterrupt`` can arrive anywhere, for example between the discriminator's and
the generator's updates of one step: a checkpoint saved there would hold half a step, and a
resumed run would no longer match an uninterrupted one bit for bit. So while training,
:class:`GracefulStop` replaces Python's SIGINT handler by one that only raises a flag; the
loop calls :meth:`GracefulStop.check` between steps, which saves the checkpoint (atomically;
a second Ctrl-C during the save waits for it) and raises :class:`TrainingInterrupted`.

A second Ctrl-C *during a step* stops at once (a step that hangs must not trap the user):
nothing is saved then, and the last checkpoint on disk is intact.

The handler is installed only in the main thread of a single process (Python delivers
signals there). Under ``torchrun`` every process receives the signal at a slightly different
step, and a process that stopped while the others entered the next step's all-reduce would
hang them, so there a Ctrl-C stops at once, as before, and the last checkpoint is kept.

``TrainingInterrupted`` is a ``KeyboardInterrupt``: code that catches Ctrl-C still does. The
``ganlab`` command prints :func:`cli_message` (with the exact command that resumes) and exits
with status 130, the shell's code for a SIGINT, without a traceback.
"""

from __future__ import annotations

import shlex
import signal
import sys
import threading
import time
from pathlib import Path

from ganlab.train.checkpoint import describe_kept


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C; ``checkpoint`` is what a resume continues from."""

    def __init__(self, step: int, steps: int, checkpoint: Path | None, saved: bool) -> None:
        self.step, self.steps, self.checkpoint, self.saved = step, steps, checkpoint, saved
        if saved:
            text = f"interrupted at step {step} of {steps}; checkpoint saved: {checkpoint}"
        elif checkpoint is None:
            text = f"interrupted at step {step} of {steps}; nothing saved (no --out folder)"
        else:
            text = (
                f"interrupted during step {step + 1} of {steps}, nothing saved; last "
                f"checkpoint kept: {describe_kept(checkpoint)}"
            )
        super().__init__(text)

    @property
    def resumable(self) -> bool:
        return self.checkpoint is not None and Path(self.checkpoint).is_file()


class GracefulStop:
    """``with GracefulStop(trainer) as stop:`` around the step loop, ``stop.check()`` after
    each step. ``trainer`` gives ``step``, ``cfg.steps``, ``seconds``, ``dist``,
    ``checkpoint_path`` and ``save_checkpoint()``."""

    def __init__(self, trainer) -> None:
        self.trainer = trainer
        self.requested = False
        self.saving = False
        self._previous = None
        self._installed = False

    # -------------------------------------------------------------- the handler
    def __enter__(self) -> GracefulStop:
        t = self.trainer
        self._t0, self._seconds0 = time.perf_counter(), t.seconds
        main_thread = threading.current_thread() is threading.main_thread()
        if main_thread and not t.dist.enabled:
            self._previous = signal.getsignal(signal.SIGINT)
            signal.signal(signal.SIGINT, self._on_sigint)
            self._installed = True
        return self

    def _on_sigint(self, signum, frame) -> None:
        if self.saving:
            return  # the save finishes first; TrainingInterrupted follows it
        if self.requested:  # second Ctrl-C during a step: stop now
            self._restore()
            raise KeyboardInterrupt
        self.requested = True
        print(
            f"\nCtrl-C: finishing step {self.trainer.step + 1}, then saving a checkpoint "
            "(Ctrl-C again to stop at once without saving)",
            file=sys.stderr,
            flush=True,
        )

    def _restore(self) -> None:
        if self._installed:
            previous = self._previous if self._previous is not None else signal.default_int_handler
            signal.signal(signal.SIGINT, previous)
            self._installed = False

    # -------------------------------------------------------------- between steps
    def check(self) -> None:
        """Between two steps: if Ctrl-C was pressed, save and raise TrainingInterrupted."""
        if not self.requested:
            return
        t = self.trainer
        t.seconds = self._seconds0 + time.perf_counter() - self._t0
        self.saving = True
        try:
            saved = t.save_checkpoint()  # None without --out, or on a non-main process
        finally:
            self.saving = False
        raise TrainingInterrupted(t.step, t.cfg.steps, t.checkpoint_path, saved is not None)

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._restore()
        if exc_type is not None and issubclass(exc_type, KeyboardInterrupt):
            if not isinstance(exc, TrainingInterrupted):  # stopped mid-step: nothing saved
                t = self.trainer
                raise TrainingInterrupted(t.step, t.cfg.steps, t.checkpoint_path, False) from exc
        return False


def resume_command(argv: list[str]) -> str:
    """The command that continues an interrupted ``ganlab train`` run: the same arguments,
    without ``--overwrite`` and with ``--resume``."""
    args = [a for a in argv if a != "--overwrite"]
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join(["ganlab", *args])


def cli_message(exc: KeyboardInterrupt, argv: list[str] | None) -> str:
    """What the ``ganlab`` command prints on Ctrl-C (no traceback)."""
    if not isinstance(exc, TrainingInterrupted):
        return "ganlab: interrupted"
    lines = [f"ganlab: {exc}"]
    if exc.resumable and argv and argv[0] == "train":
        lines.append(f"resume with: {resume_command(argv)}")
    return "\n".join(lines)
