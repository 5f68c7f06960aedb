"""ganlab.runner, what scripts/course.sh runs: limits per cell that hold, and a clear report.

Two tiny notebooks in real kernels (about 10 s on 2 cores): the first never finishes a cell
(it even ignores Ctrl-C), the second is fine. The course must kill the first, name its cell,
go on with the second, and end with a table and a non-zero exit.
"""

from __future__ import annotations

import nbformat
import pytest

from ganlab import runner
from ganlab.runner import CELL_TIMEOUT, CellTimeout, first_line, positive_timeout


def write(path, *sources):
    cells = [nbformat.v4.new_code_cell(s) for s in sources]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_course_goes_on_after_a_stuck_chapter_and_reports_it(tmp_path, capsys):
    stuck = write(
        tmp_path / "01_stuck.ipynb",
        "x = 1",
        "import time\nwhile True:\n    try:\n        time.sleep(1)\n    except KeyboardInterrupt:\n"
        "        pass",
        "print('never')",
    )
    fine = write(tmp_path / "02_fine.ipynb", "print(6 * 7)")
    out_dir = tmp_path / "executed"
    argv = ["--profile", "smoke", "--cell-timeout", "3", "--out", str(out_dir)]
    assert runner.main([*argv, str(stuck), str(fine)]) == 1
    out = capsys.readouterr().out
    assert "at most 3 s per cell" in out
    assert "[1/2] executing" in out and "[2/2] executing" in out
    assert f"[1/2] {stuck}: timeout in" in out
    assert f"[2/2] {fine}: ok in" in out
    assert f"{stuck}: cell 1 (`import time`) gave no reply within 3 s" in out
    assert "the cell was still running" in out and "a rerun usually succeeds" in out
    # The summary table: one row per notebook, then where the executed copies are.
    table = out[out.index("notebook  ") :]
    assert [line.split()[:2] for line in table.splitlines()[1:3]] == [
        ["01_stuck.ipynb", "timeout"],
        ["02_fine.ipynb", "ok"],
    ]
    assert f"executed notebooks: {out_dir}" in out
    assert f"1 of 2 failed: {stuck}" in out
    # Both executed copies are kept; the stuck one up to where it stopped.
    executed = nbformat.read(out_dir / "01_stuck.ipynb", as_version=4)
    assert executed.cells[0].execution_count == 1 and executed.cells[2].execution_count is None
    fine_out = nbformat.read(out_dir / "02_fine.ipynb", as_version=4).cells[0].outputs
    assert fine_out[0]["text"] == "42\n"


@pytest.mark.parametrize("value", [0, -1, "0", "2.5", "", "soon", True])
def test_no_limit_is_not_a_limit(value):
    with pytest.raises(ValueError, match="positive whole number of seconds"):
        positive_timeout(value)


def test_limits_are_positive_and_grow_with_the_profile():
    assert positive_timeout("+30") == positive_timeout(30) == 30
    assert 0 < CELL_TIMEOUT["smoke"] < CELL_TIMEOUT["cpu"] <= CELL_TIMEOUT["gpu"]
    # The cpu limit is several times the longest cpu cell measured (218 s, chapter 3).
    assert CELL_TIMEOUT["cpu"] >= 5 * 218


def test_a_timeout_message_says_what_the_kernel_was_doing():
    lost = CellTimeout(7, "train(G, D)", 1200, "killed", "not started", kernel_cpu=0.1)
    message = lost.describe("notebooks/02_gan_int_cls.ipynb")
    assert message.startswith("notebooks/02_gan_int_cls.ipynb: cell 7 (`train(G, D)`)")
    assert "request was lost" in message and "A rerun usually succeeds" in message
    finished = CellTimeout(7, "x", 60, "killed", "finished").describe("nb")
    assert "its reply was lost" in finished
    stuck = CellTimeout(3, "x", 60, "killed", "running", interrupted=True).describe("nb")
    assert "catch KeyboardInterrupt" in stuck
    assert first_line("\n\n   # the loss\nx = 1") == "# the loss"
    assert len(first_line("y = " + "1 + " * 40)) == 70


class MissedWakeUps:
    """A channel whose message is queued from the start but whose notification was missed:
    a wait of any length finds it only when it polls again (a ``timeout=0`` look or a new
    wait after the first one ended)."""

    def __init__(self):
        self.waits: list[float | None] = []

    async def get_msg(self, timeout=None):
        from queue import Empty

        self.waits.append(timeout)
        if len(self.waits) == 1:  # the first wait never wakes on its own
            raise Empty
        return {"msg_type": "execute_reply"}


def test_replies_are_looked_for_again_every_slice():
    """The runner's channels wait in slices (``POLL_SLICE``), so a queued reply whose
    wake-up was missed is read within a slice, whether nbclient waits without a timeout
    (iopub) or for a whole cell limit (shell); an empty channel still times out on time."""
    import asyncio
    import time
    from queue import Empty

    for timeout in (None, 1200):
        channel = MissedWakeUps()
        get = runner.sliced_get_msg(channel.get_msg, slice_s=0.01)
        assert asyncio.run(get(timeout=timeout)) == {"msg_type": "execute_reply"}
        assert channel.waits == [0.01, 0.01]  # never the whole wait at once

    async def empty(timeout=None):
        await asyncio.sleep(timeout)
        raise Empty

    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(runner.sliced_get_msg(empty, slice_s=0.02)(timeout=0.1))
    assert 0.1 <= time.monotonic() - start < 2  # on time, not forever; CI may be busy
