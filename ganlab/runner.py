"""Run notebooks headlessly with a per-cell time limit that is enforced, and say what happened.

Used by ``scripts/course.sh`` (``python -m ganlab.runner``) to execute the lectures, and by
the grader (:mod:`ganlab.grading.grade`) to run submissions. Both rest on
:class:`NotebookRunner`, an ``nbclient`` client with two rules added:

* **A cell past its limit stops.** ``on_timeout="kill"`` (the course) kills the kernel's
  whole process group at once and stops the notebook; ``on_timeout="interrupt"`` (the
  grader) first interrupts the cell (Ctrl-C) so that later cells still run, and kills the
  kernel if the cell has not stopped ``kill_grace`` seconds later (a cell that catches
  ``KeyboardInterrupt`` cannot hold the run hostage).
* **A timeout names the notebook and the cell** (index and first line) and says whether the
  kernel was working or idle meanwhile: an idle kernel means a request or a reply was lost
  between the client and the kernel (seen with ipykernel 7, see issue 13), and a rerun
  usually succeeds.
* **Replies are looked for again every second** (:func:`sliced_get_msg`). pyzmq's asyncio
  poll waits for the socket's edge-triggered notification; under CPU contention one can be
  missed, and a reply already queued then sits unread until the wait's own timeout (nbclient
  waits on the shell channel for the whole cell limit, on iopub forever). Seen here: chapter
  3's last cell (an explorer) finished with the kernel idle, and the run went on only when
  the 1,200 s limit woke the wait, which found the reply at once (``ok in 1408 s``).

The limits per cell, :data:`CELL_TIMEOUT`, are sized from the lectures' longest cells. In
the ``cpu`` profile (2 CPU threads; the timings stored in the notebooks) they took 218 s
(chapter 3's training run), 209 s (chapter 2), 151 s (chapter 4), 85 s (chapter 1): the
limit, 20 minutes, is about 5x the longest. In ``smoke`` the longest took 29 s (chapter 2's
evaluation, executed by this runner on 2 cores shared with other work): 2 minutes is 4x
that. ``gpu`` runs train longer per cell, hence 30 minutes (not measured here).

Command line::

    python -m ganlab.runner [--profile P] [--cell-timeout S] [--out DIR] NOTEBOOK ...

executes each notebook in turn (in its own folder, so relative paths work), writes the
executed copy to ``DIR`` (even a partial one, for a look at where it stopped), prints
progress ``[k/N]`` with the time each took and a summary table, and exits 1 if any failed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
from nbclient.util import ensure_async, run_sync

CELL_TIMEOUT = {"smoke": 120, "cpu": 1200, "gpu": 1800}
"""Seconds one cell may run, per profile (see the module docstring for how they were sized)."""

KILL_GRACE = 10
"""Seconds an interrupted cell gets to stop before the kernel is killed."""

POLL_SLICE = 1.0
"""Seconds one wait on a kernel channel lasts before it polls the socket again."""

RERUN_HINT = "a rerun usually succeeds"


def positive_timeout(value) -> int:
    """``value`` as a positive whole number of seconds; ``ValueError`` saying what is allowed.

    Zero or a negative number would mean "no limit" to nbclient, which is how one endless
    cell used to stop a whole run: a limit is always required here.
    """
    text = str(value).strip()
    if isinstance(value, bool) or not re.fullmatch(r"\+?[0-9]+", text) or int(text) <= 0:
        raise ValueError(
            f"a cell timeout must be a positive whole number of seconds, got {value!r} "
            "(there is no 'no limit': pick a generous number instead)"
        )
    return int(text)


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU seconds of process ``pid`` (Linux ``/proc``; None elsewhere)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def sliced_get_msg(get_msg, slice_s: float = POLL_SLICE):
    """A channel's ``get_msg(timeout=None)`` that waits in slices of ``slice_s`` seconds.

    Each slice ends with a fresh poll of the socket, so a message whose notification was
    missed is found within a slice instead of at the end of the whole wait (see the module
    doc). ``queue.Empty`` is raised, as before, only once ``timeout`` has passed.
    """

    async def get(timeout: float | None = None):
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = slice_s if deadline is None else min(slice_s, deadline - time.monotonic())
            try:
                return await ensure_async(get_msg(timeout=max(left, 0.0)))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get


def first_line(source: str) -> str:
    """The first non-blank line of a cell, shortened to 70 characters."""
    line = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return line if len(line) <= 70 else line[:67] + "..."


@dataclass
class CellTimeout:
    """One cell that ran past its limit."""

    index: int  # position among all cells of the notebook, from 0
    first_line: str
    limit: int  # seconds
    action: str  # "interrupted" (it stopped on Ctrl-C) or "killed" (the kernel was killed)
    state: str  # what the kernel said: "not started", "running" or "finished" (went idle)
    kernel_cpu: float | None = None  # CPU seconds the kernel used while the cell ran (Linux)
    interrupted: bool = False  # whether an interrupt was tried first

    def describe(self, notebook: str) -> str:
        """A message naming the notebook, the cell, what the kernel was doing, what to do."""
        where = f"cell {self.index} (`{self.first_line}`)" if self.index >= 0 else self.first_line
        what = f"{notebook}: {where} gave no reply within "
        what += f"{self.limit} s"
        if self.action == "interrupted":
            return what + "; it was interrupted and the run went on"
        cpu = "" if self.kernel_cpu is None else f", {self.kernel_cpu:.1f} s of kernel CPU"
        cause = {
            "not started": "the kernel never started the cell: the request was lost on its way "
            "(a known fault of ipykernel 7; this course declares ipykernel<7)",
            "finished": "the kernel finished the cell but its reply was lost",
            "running": f"the cell was still running{cpu}",
        }[self.state]
        if self.interrupted:
            return (
                f"{what}; it was interrupted but did not stop (does it catch "
                "KeyboardInterrupt?), so the kernel was killed and the rest did not run."
            )
        if self.state == "running":
            return (
                f"{what}; {cause}. The kernel was killed. If the cell was working, it needs "
                "more time on this machine (raise the limit per cell); if it was stuck, a rerun "
                "usually succeeds."
            )
        return f"{what}; {cause}. The kernel was killed. A rerun usually succeeds."


class NotebookRunner(NotebookClient):
    """An ``nbclient`` client whose per-cell timeout always ends the cell (see the module doc).

    After :meth:`run`, ``timeouts`` lists every cell that ran past ``timeout`` and
    ``killed`` says whether the kernel had to be killed.
    """

    def __init__(self, nb, *, on_timeout: str = "kill", kill_grace: float = KILL_GRACE, **kw):
        if on_timeout not in ("kill", "interrupt"):
            raise ValueError(f"on_timeout must be 'kill' or 'interrupt', got {on_timeout!r}")
        kw["timeout"] = positive_timeout(kw.get("timeout", CELL_TIMEOUT["smoke"]))
        kw.setdefault("kernel_name", "python3")
        super().__init__(nb, interrupt_on_timeout=False, **kw)
        self.on_timeout, self.kill_grace = on_timeout, kill_grace
        self.timeouts: list[CellTimeout] = []
        self.killed = False
        self.on_cell_execute = self._cell_starts
        self.on_cell_executed = self._cell_ends
        self._cell: tuple[int, str, float | None] | None = None  # index, source, kernel CPU
        self.last_cell: tuple[int, str] | None = None  # the last cell that started
        self._state: str | None = None  # the kernel's last status ("busy", "idle") for it
        self._run = 0  # counts cells, so a late kill timer knows whether its cell is over
        self._kill_timer: asyncio.TimerHandle | None = None

    def _kernel_pid(self) -> int | None:
        return getattr(getattr(self.km, "provisioner", None), "pid", None)

    def process_message(self, msg, cell, cell_index):
        """nbclient's handler of the cell's iopub messages; notes the kernel's status."""
        if msg.get("msg_type") == "status":
            self._state = msg["content"].get("execution_state", self._state)
        return super().process_message(msg, cell, cell_index)

    def _cell_starts(self, cell, cell_index) -> None:
        self._run += 1
        self._state = None  # no status from the kernel for this cell yet
        self._cell = (cell_index, cell.source, _cpu_seconds(self._kernel_pid()))
        self.last_cell = (cell_index, cell.source)

    def _cell_ends(self, cell, cell_index, execute_reply) -> None:
        self._cell = None
        if self._kill_timer is not None:  # the interrupted cell stopped in time
            self._kill_timer.cancel()
            self._kill_timer = None

    async def _kill(self, stop_waiting: bool = True) -> None:
        """Kill the kernel's process group; ``stop_waiting`` ends the wait for the cell."""
        self.killed = True
        if self.km is not None:
            kill = getattr(signal, "SIGKILL", signal.SIGTERM)
            try:
                await ensure_async(self.km.signal_kernel(kill))
            except Exception:  # noqa: BLE001 - already gone: nothing left to kill
                pass
        if self.timeouts:
            self.timeouts[-1].action = "killed"
        task = getattr(self, "task_poll_for_reply", None)
        if stop_waiting and task is not None and not task.done():
            task.cancel()  # nbclient turns this into DeadKernelError

    async def _async_handle_timeout(self, timeout, cell=None):
        if self._kill_timer is not None:  # interrupted already: the grace timer decides
            return None
        index, source, cpu_start = self._cell or (-1, getattr(cell, "source", ""), None)
        cpu_now = _cpu_seconds(self._kernel_pid())
        used = cpu_now - cpu_start if cpu_now is not None and cpu_start is not None else None
        state = {None: "not started", "busy": "running", "idle": "finished"}[self._state]
        self.timeouts.append(CellTimeout(index, first_line(source), timeout, "killed", state, used))
        if self.on_timeout == "interrupt" and cell is not None:
            self.timeouts[-1].action, self.timeouts[-1].interrupted = "interrupted", True
            await ensure_async(self.km.interrupt_kernel())
            run = self._run

            def kill_if_still_running():
                if self._run == run and self._cell is not None:
                    asyncio.ensure_future(self._kill())

            loop = asyncio.get_running_loop()
            self._kill_timer = loop.call_later(self.kill_grace, kill_if_still_running)
            return None  # nbclient keeps waiting for the (interrupted) reply
        await self._kill(stop_waiting=False)
        if cell is None:  # a hidden request (kernel info, the grader's code): no reply
            return None
        raise CellTimeoutError.error_from_timeout_and_cell(
            "Cell execution timed out", timeout, cell
        )

    async def async_run_hidden(
        self,
        code: str,
        user_expressions: dict | None = None,
        label: str = "hidden code",
        timeout: int | None = None,
    ):
        """Run ``code`` silently (no output, not in the history); the reply, or None.

        The grader uses this for its own set-up and verification code: what it returns
        comes back in the reply's ``user_expressions``, not through printed output.
        ``label`` names the request in timeout messages; ``timeout`` (default: the
        per-cell one) limits it, and the kernel is killed past it.
        """
        msg_id = await ensure_async(
            self.kc.execute(
                code, silent=True, store_history=False, user_expressions=user_expressions or {}
            )
        )
        self._cell = (-1, label, _cpu_seconds(self._kernel_pid()))
        self._state = "busy"  # silent requests publish no status to read
        cell_timeout, self.timeout = self.timeout, positive_timeout(timeout or self.timeout)
        try:
            reply = await self.async_wait_for_reply(msg_id)
        finally:
            self.timeout = cell_timeout
        self._cell = None
        if reply is None and not self.killed:  # timed out (interrupted or not)
            await self._kill()
        return reply

    async def async_run(self, env=None, setup: dict | None = None, final: dict | None = None):
        """Execute every cell; ``setup``/``final`` run hidden before/after the notebook.

        Each is a dict of :meth:`async_run_hidden`'s arguments (``code``, ``label``,
        ``timeout``, ``user_expressions``); returns the content of ``final``'s reply (or None).
        Raises what nbclient raises (``CellExecutionError``, ``DeadKernelError`` after a
        kill, ``CellTimeoutError``); ``timeouts`` and ``killed`` say what the limit did.
        """
        self.reset_execution_trackers()
        result = None
        async with self.async_setup_kernel(env=env):
            for channel in (self.kc.shell_channel, self.kc.iopub_channel):
                channel.get_msg = sliced_get_msg(channel.get_msg)  # no missed wake-ups
            self._cell = (-1, "the kernel's first reply (kernel_info)", None)
            info = await self.async_wait_for_reply(await ensure_async(self.kc.kernel_info()))
            self._cell = None
            if info is not None and "language_info" in info["content"]:
                self.nb.metadata["language_info"] = info["content"]["language_info"]
            if setup:
                await self.async_run_hidden(**setup)
            for index, cell in enumerate(self.nb.cells):
                if self.killed:
                    break
                await self.async_execute_cell(
                    cell, index, execution_count=self.code_cells_executed + 1
                )
            if final and not self.killed:
                reply = await self.async_run_hidden(**final)
                result = reply["content"] if reply is not None else None
            self.set_widgets_metadata()
        return result

    def run(self, env=None, setup=None, final=None):
        """Synchronous :meth:`async_run`."""
        return run_sync(self.async_run)(env=env, setup=setup, final=final)


@dataclass
class RunResult:
    """What happened to one notebook run by :func:`run_notebook`."""

    notebook: str
    status: str  # "ok", "error" (a cell raised), "timeout" or "failed" (kernel died, ...)
    seconds: float
    message: str = ""
    executed: str | None = None  # where the executed copy was written
    timeouts: list[CellTimeout] = field(default_factory=list)


def run_notebook(
    path: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    profile: str = "smoke",
    cell_timeout: int | None = None,
) -> RunResult:
    """Execute one notebook in its folder (stop at the first error); never raises for it.

    The kernel gets ``GANLAB_PROFILE=profile``; a cell past ``cell_timeout`` seconds
    (default :data:`CELL_TIMEOUT` of the profile) kills the kernel and ends the run. The
    executed notebook goes to ``out_dir`` under the same name, even when the run stopped.
    """
    path = Path(path)
    timeout = positive_timeout(cell_timeout or CELL_TIMEOUT[profile])
    nb = nbformat.read(path, as_version=4)
    runner = NotebookRunner(
        nb,
        timeout=timeout,
        on_timeout="kill",
        resources={"metadata": {"path": str(path.resolve().parent)}},
    )
    env = {**os.environ, "GANLAB_PROFILE": profile}
    start = time.monotonic()
    status, message = "ok", ""
    try:
        runner.run(env=env)
    except (CellTimeoutError, DeadKernelError) as error:
        if runner.timeouts:
            status, message = "timeout", runner.timeouts[-1].describe(str(path))
        else:
            status, message = "failed", f"{path}: {type(error).__name__}: {error}"
    except CellExecutionError as error:
        status = "error"
        cell = runner.last_cell
        where = f"cell {cell[0]} (`{first_line(cell[1])}`)" if cell else "a cell"
        last = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip().splitlines()
        message = f"{path}: {where} raised {last[-1] if last else type(error).__name__}"
    except Exception as error:  # noqa: BLE001 - kernel start failures and the like
        status, message = "failed", f"{path}: {type(error).__name__}: {error}"
    seconds = time.monotonic() - start
    executed = None
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        executed = str(Path(out_dir) / path.name)
        nbformat.write(nb, executed)
    return RunResult(str(path), status, seconds, message, executed, runner.timeouts)


def format_summary(results: list[RunResult]) -> str:
    """A table: notebook, status, seconds; then the message of each that failed."""
    width = max([len("notebook")] + [len(Path(r.notebook).name) for r in results])
    lines = [f"{'notebook':<{width}}  {'status':<8}  {'seconds':>8}"]
    for r in results:
        lines.append(f"{Path(r.notebook).name:<{width}}  {r.status:<8}  {r.seconds:>8.0f}")
    total = sum(r.seconds for r in results)
    lines.append(f"{'total':<{width}}  {'':<8}  {total:>8.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m ganlab.runner``: execute notebooks in turn; 1 if any of them failed."""
    from ganlab.profiles import PROFILES, get_profile

    parser = argparse.ArgumentParser(
        prog="python -m ganlab.runner", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("notebooks", nargs="+", help="notebooks to execute, in this order")
    parser.add_argument(
        "--profile", choices=PROFILES, help="default: GANLAB_PROFILE or the hardware's"
    )
    parser.add_argument(
        "--cell-timeout",
        help="seconds per cell (default: by profile, "
        + ", ".join(f"{k} {v}" for k, v in CELL_TIMEOUT.items())
        + ")",
    )
    parser.add_argument("--out", default="runs/executed", help="folder for the executed copies")
    args = parser.parse_args(argv)
    profile = args.profile or get_profile().name
    try:
        timeout = positive_timeout(args.cell_timeout or CELL_TIMEOUT[profile])
    except ValueError as error:
        parser.error(str(error))
    missing = [p for p in args.notebooks if not Path(p).is_file()]
    if missing:
        parser.error(f"no such notebook: {', '.join(missing)}")
    n = len(args.notebooks)
    print(f"[course] {n} notebook(s), profile {profile}, at most {timeout} s per cell", flush=True)
    results = []
    for k, path in enumerate(args.notebooks, 1):
        print(f"[course] [{k}/{n}] executing {path} ...", flush=True)
        result = run_notebook(path, args.out, profile, timeout)
        results.append(result)
        print(f"[course] [{k}/{n}] {path}: {result.status} in {result.seconds:.0f} s", flush=True)
        if result.message:
            print(f"[course]   {result.message}", flush=True)
    print("\n" + format_summary(results))
    failed = [r for r in results if r.status != "ok"]
    print(f"\n[course] executed notebooks: {Path(args.out).resolve()}")
    if failed:
        print(f"[course] {len(failed)} of {n} failed: " + ", ".join(r.notebook for r in failed))
        for r in failed:
            print(f"[course]   {r.message}")
        if any(r.status == "timeout" for r in failed):
            print(
                f"[course] {RERUN_HINT}: run the failed ones again with "
                f"python -m ganlab.runner --profile {profile} "
                + " ".join(r.notebook for r in failed if r.status == "timeout")
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
