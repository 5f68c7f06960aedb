"""Grade submitted notebooks: run them headlessly, read what their check cells reported.

Before running, every check cell is rewritten from its metadata (``{"ganlab": {"check":
"cgan/1"}}``) to the canonical two lines, so an edited check still checks; a registered
exercise whose check cell was deleted scores 0 as ``"missing"``. The notebook runs in a fresh
kernel with ``allow_errors``, so one broken answer does not stop the later checks.

One result per notebook::

    {"notebook": "alice.ipynb", "chapter": "cgan", "score": 7, "max_score": 10,
     "exercises": [{"id": "1", "title": "...", "points": 2, "max_points": 2,
                    "status": "passed", "message": ""}, ...],
     "errors": [{"cell": 12, "ename": "NameError", "evalue": "..."}]}

Submitted notebooks are arbitrary code and run with the grader's permissions: grade them
in a throwaway container or virtual machine.

``status`` is ``passed``, ``failed`` (the check rejected the answer), ``not_implemented``
(the exercise still raises ``NotImplementedError``), ``missing`` (no check cell) or
``error`` (the student's code raised something else, or the check never ran). ``errors``
lists every error any cell raised, for the teacher's eyes.
"""

from __future__ import annotations

import csv as csv_module
import os
from pathlib import Path

import nbformat

from ganlab.grading.build import check_key, notebook_chapter
from ganlab.grading.registry import check_source, get_exercises

STATUSES = ("passed", "failed", "not_implemented", "missing", "error")


def prepare_for_grading(nb, chapter: str | None = None):
    """Rewrite the check cells of ``nb`` in place; return ``(chapter, {key: cell index})``.

    Check cells are recognised by metadata (or, failing that, by their canonical source)
    and reset to the canonical source, as code cells. Check cells of exercises the chapter
    does not register are turned into no-ops. Every stored output is cleared, so nothing
    from the student's own run can be mistaken for a result of this one.
    """
    chapter = chapter or notebook_chapter(nb)
    if chapter is None:
        raise ValueError("not a GAN Lab assignment: no ganlab chapter metadata, no check cells")
    registered = {e.key for e in get_exercises(chapter)}
    cells: dict[str, int] = {}
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
        key = check_key(cell)
        if key is None:
            continue
        source = "# (not a registered exercise)"
        if key in registered:
            source = check_source(*key.split("/", 1))
            cells[key] = i  # a duplicated check cell: the last one counts
        new = nbformat.v4.new_code_cell(source, metadata={"ganlab": {"check": key}})
        new["id"] = cell.get("id") or f"check-{i}"
        nb.cells[i] = new
    return chapter, cells


def execute(nb, cwd: str | os.PathLike, timeout: int = 600, profile: str = "smoke"):
    """Run ``nb`` in place in a fresh ``python3`` kernel; returns an error string or None.

    Cell errors are recorded in the outputs and execution goes on; a cell that runs
    past ``timeout`` seconds is interrupted. Only a dead or unresponsive kernel stops the
    run (the string says why; cells after it keep no execution count).
    """
    from nbclient import NotebookClient

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        interrupt_on_timeout=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    env = {**os.environ, "GANLAB_PROFILE": profile}
    try:
        client.execute(env=env)
    except Exception as error:  # DeadKernelError, CellTimeoutError, kernel start failures
        return f"{type(error).__name__}: {error}"
    return None


def _errors(cell) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _stdout(cell) -> str:
    return "".join(
        o.get("text", "")
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def score(nb, chapter: str, check_cells: dict[str, int], run_error: str | None = None) -> dict:
    """Read the executed check cells of ``nb``; the result dict without ``notebook``."""
    exercises = []
    for exercise in get_exercises(chapter):
        status, message = "missing", "the check cell was deleted"
        index = check_cells.get(exercise.key)
        if index is not None:
            cell = nb.cells[index]
            errors = _errors(cell)
            if errors:
                ename, evalue = errors[-1].get("ename", ""), errors[-1].get("evalue", "")
                status = {"NotImplementedError": "not_implemented", "CheckFailed": "failed"}.get(
                    ename, "error"
                )
                message = evalue if status != "error" else f"{ename}: {evalue}"
            elif cell.get("execution_count") is None:
                status = "error"
                message = f"the check did not run ({run_error or 'execution stopped'})"
            elif exercise.passed_line() in _stdout(cell):
                status, message = "passed", ""
            else:
                status, message = "error", "the check ran but reported no result"
        points = exercise.points if status == "passed" else 0
        exercises.append(
            {
                "id": exercise.id,
                "title": exercise.title,
                "points": points,
                "max_points": exercise.points,
                "status": status,
                "message": message,
            }
        )
    errors = [
        {"cell": i, "ename": e.get("ename", ""), "evalue": e.get("evalue", "")}
        for i, cell in enumerate(nb.cells)
        for e in _errors(cell)
    ]
    result = {
        "chapter": chapter,
        "score": sum(e["points"] for e in exercises),
        "max_score": sum(e["max_points"] for e in exercises),
        "exercises": exercises,
        "errors": errors,
    }
    if run_error:
        result["run_error"] = run_error
    return result


def grade_notebook(
    path: str | os.PathLike,
    timeout: int = 600,
    profile: str = "smoke",
    executed_path: str | os.PathLike | None = None,
) -> dict:
    """Run one submitted notebook (in its own folder) and score its exercises.

    ``timeout`` is in seconds per cell; ``profile`` sets ``GANLAB_PROFILE`` for the run.
    ``executed_path``, if given, receives the executed notebook (feedback for the student).
    """
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    chapter, check_cells = prepare_for_grading(nb)
    run_error = execute(nb, cwd=path.resolve().parent, timeout=timeout, profile=profile)
    if executed_path is not None:
        nbformat.write(nb, executed_path)
    return {"notebook": str(path), **score(nb, chapter, check_cells, run_error)}


def grade_path(
    path: str | os.PathLike,
    csv: str | os.PathLike | None = None,
    timeout: int = 600,
    profile: str = "smoke",
) -> list[dict]:
    """Grade one notebook, or every ``*.ipynb`` in a folder (sorted by name).

    In a folder, a notebook that cannot be graded at all (unreadable, not an assignment)
    gets a row with score 0 and an ``error`` field instead of stopping the others.
    ``csv`` writes one row per notebook: notebook, score, max_score, then the points of
    each exercise (columns ``chapter/id``).
    """
    path = Path(path)
    if path.is_dir():
        results = []
        for notebook in sorted(path.glob("*.ipynb")):
            try:
                results.append(grade_notebook(notebook, timeout=timeout, profile=profile))
            except Exception as error:
                results.append(
                    {
                        "notebook": str(notebook),
                        "chapter": None,
                        "score": 0,
                        "max_score": 0,
                        "exercises": [],
                        "errors": [],
                        "error": f"{type(error).__name__}: {error}",
                    }
                )
    elif path.exists():
        results = [grade_notebook(path, timeout=timeout, profile=profile)]
    else:
        raise FileNotFoundError(f"no notebook or folder at {path}")
    if csv is not None:
        write_csv(results, csv)
    return results


def write_csv(results: list[dict], path: str | os.PathLike) -> Path:
    """One row per notebook; the exercise columns are the union over all results."""
    columns: list[str] = []
    for result in results:
        for exercise in result["exercises"]:
            key = f"{result['chapter']}/{exercise['id']}"
            if key not in columns:
                columns.append(key)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv_module.writer(f)
        writer.writerow(["notebook", "score", "max_score", *columns])
        for result in results:
            points = {f"{result['chapter']}/{e['id']}": e["points"] for e in result["exercises"]}
            row = [result["notebook"], result["score"], result["max_score"]]
            writer.writerow(row + [points.get(key, "") for key in columns])
    return path


def format_table(results: list[dict]) -> str:
    """A score table for the terminal: one block per notebook, one line per exercise."""
    lines = []
    for result in results:
        lines.append(
            f"{result['notebook']}  [{result['chapter']}]  "
            f"score {result['score']}/{result['max_score']}"
        )
        if result.get("error"):
            lines.append(f"  not graded: {result['error']}")
        for e in result["exercises"]:
            message = (e["message"] or "").strip().splitlines()
            first = message[0] if message else ""
            if len(first) > 90:
                first = first[:87] + "..."
            lines.append(
                f"  {e['id']:>3}  {e['title'][:36]:<36}  {e['status']:<15}  "
                f"{e['points']:>2}/{e['max_points']:<2}  {first}".rstrip()
            )
        if result.get("run_error"):
            lines.append(f"  run stopped: {result['run_error']}")
        lines.append("")
    if len(results) > 1:
        total = sum(r["score"] for r in results)
        lines.append(f"{len(results)} notebooks, mean score {total / len(results):.2f}")
    return "\n".join(lines).rstrip() + "\n"
