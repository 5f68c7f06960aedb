"""Grade submitted notebooks: run them headlessly, score what the grader itself re-checks.

Before running, every check cell is rewritten from its metadata (``{"ganlab": {"check":
"cgan/1"}}``) to the canonical two lines, so an edited check still checks; a registered
exercise whose check cell was deleted scores 0 as ``"missing"``. Each submission runs from
its own temporary folder (a copy of the notebook, read before any submission ran; nothing is
written into the submissions folder) in a fresh kernel with ``allow_errors``, so one broken
answer does not stop the later checks.

**Scores do not come from what the notebook prints.** Hidden requests of the grader (see
:mod:`ganlab.grading.guard`) snapshot the check machinery before the first cell and, after
the last, look for anything replaced and re-run every exercise's original check on the
student's objects; the verdicts come back in the reply to that request, tagged with a nonce
fresh per run. An exercise scores when its check cell ran and passed in the notebook *and*
the grader's own re-check passed. If anything the checks rely on was replaced, or ganlab's
files changed on disk, the notebook scores 0 and is marked ``tampered``.

**Time limits are enforced.** A cell past ``timeout`` seconds is interrupted; if it has not
stopped 10 s later (a cell that catches ``KeyboardInterrupt``) the kernel is killed, the
rest of the notebook does not run, and the next submission goes on.

One result per notebook::

    {"notebook": "alice.ipynb", "chapter": "cgan", "score": 7, "max_score": 10,
     "exercises": [{"id": "1", "title": "...", "points": 2, "max_points": 2,
                    "status": "passed", "message": ""}, ...],
     "errors": [{"cell": 12, "ename": "NameError", "evalue": "..."}],
     "timeouts": ["alice.ipynb: cell 9 (`while True:`) gave no reply within 120 s; ..."],
     "tampered": [], "review": []}

``status`` is ``passed``, ``failed`` (the check rejected the answer), ``not_implemented``
(the exercise still raises ``NotImplementedError``), ``missing`` (no check cell), ``error``
(the student's code raised something else, or the check never ran) or ``tampered``.
``errors`` lists every error any cell raised; ``review`` lists cells that reach into the
grading machinery, Python's internals or other files (worth a teacher's look even when
nothing was caught).

Submitted notebooks are arbitrary code and run with the grader's permissions: what a cell
does to the rest of the machine cannot be undone by a grader, only kept away by running it
in a throwaway container or virtual machine.
"""

from __future__ import annotations

import ast
import csv as csv_module
import hashlib
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from ganlab.errors import GanLabError
from ganlab.grading.build import check_key, notebook_chapter
from ganlab.grading.registry import check_source, get_exercises
from ganlab.runner import CELL_TIMEOUT, NotebookRunner, positive_timeout

SETUP_TIMEOUT = 120
"""Seconds the grader's hidden set-up may take (it imports torch and every check)."""

STATUSES = ("passed", "failed", "not_implemented", "missing", "error", "tampered")

REVIEW_PATTERNS = {
    r"ganlab\.grading|from ganlab import grading": "imports the grading machinery",
    r"__code__|__globals__|__closure__": "touches function internals",
    r"sys\.modules|importlib|builtins": "touches Python's module system or builtins",
    r"\bgc\.|ctypes|inspect\.stack|sys\._getframe": "reaches into the interpreter",
    r"\bsetattr\s*\(\s*(torch|F|nn)\b|^\s*(torch|F|nn)(\.\w+)+\s*=[^=]": "replaces torch code",
    r"\.ipynb|os\.(remove|unlink|rename|replace)|shutil\.|subprocess|os\.system": (
        "touches files or runs programs"
    ),
}
"""Regular expressions over the student's code cells -> why the cell is worth a look."""


class GradingError(GanLabError):
    """The grader cannot do what was asked (bad path, unwritable CSV, tampered install)."""


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


def review_flags(nb) -> list[str]:
    """Cells of ``nb`` (not check cells) whose code matches :data:`REVIEW_PATTERNS`."""
    flags = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code" or check_key(cell) is not None:
            continue
        for pattern, why in REVIEW_PATTERNS.items():
            match = re.search(pattern, cell.source, flags=re.MULTILINE)
            if match:
                flags.append(f"cell {i} {why} (`{match.group(0).strip()}`)")
    return flags


def package_fingerprint() -> dict[str, str]:
    """sha256 of every ``.py`` file of the installed ganlab package (relative path -> hex)."""
    import ganlab

    root = Path(ganlab.__file__).resolve().parent
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.py"))
    }


@dataclass
class Run:
    """What happened when one notebook ran (see :func:`execute`)."""

    error: str | None = None  # why the run stopped early, if it did
    report: dict | None = None  # the grader's re-check, from the hidden final request
    timeouts: list[str] = field(default_factory=list)


def execute(
    nb,
    cwd: str | os.PathLike,
    timeout: int,
    profile: str = "smoke",
    chapter: str | None = None,
    name: str = "the notebook",
) -> Run:
    """Run ``nb`` in place in a fresh ``python3`` kernel from folder ``cwd``; a :class:`Run`.

    Cell errors are recorded in the outputs and execution goes on. A cell past ``timeout``
    seconds is interrupted; one that does not stop within 10 s gets its kernel killed, and
    the run ends there (``name`` names the notebook in those messages). With ``chapter``,
    the grader's hidden requests bracket the run (see :mod:`ganlab.grading.guard`) and
    ``Run.report`` holds the re-check.
    """
    import ganlab

    timeout = positive_timeout(timeout)
    runner = NotebookRunner(
        nb,
        timeout=timeout,
        on_timeout="interrupt",
        allow_errors=True,
        resources={"metadata": {"path": str(cwd)}},
    )
    nonce = secrets.token_hex(16)
    guard = "__import__('ganlab.grading.guard', fromlist=['guard'])"
    setup = final = None
    if chapter is not None:
        # The set-up imports torch and every check (seconds, whatever the student wrote);
        # the re-check runs each exercise's check once more, each within the cell limit.
        setup = {
            "code": f"{guard}.arm({nonce!r}, {ganlab.__file__!r})",
            "label": "the grader's set-up",
            "timeout": max(timeout, SETUP_TIMEOUT),
        }
        final = {
            "code": "pass",
            "user_expressions": {"report": f"{guard}.report({nonce!r}, {chapter!r}, globals())"},
            "label": "the grader's re-check",
            "timeout": timeout * len(get_exercises(chapter)),
        }
    env = {**os.environ, "GANLAB_PROFILE": profile}
    run = Run()
    try:
        content = runner.run(env=env, setup=setup, final=final)
    except Exception as error:  # DeadKernelError after a kill, kernel start failures
        content = None
        run.error = f"{type(error).__name__}: {error}"
    run.timeouts = [t.describe(name) for t in runner.timeouts]
    if runner.killed and runner.timeouts:
        t = runner.timeouts[-1]
        where = f"cell {t.index} (`{t.first_line}`)" if t.index >= 0 else t.first_line
        run.error = f"{where} ran past {t.limit} s and its kernel was killed"
    if content is not None:
        expression = content.get("user_expressions", {}).get("report", {})
        if expression.get("status") == "ok":
            try:  # the repr of the JSON string guard.report returned
                report = json.loads(ast.literal_eval(expression["data"]["text/plain"]))
            except (KeyError, ValueError, SyntaxError, TypeError):
                report = {}
            if isinstance(report, dict) and report.get("nonce") == nonce:
                run.report = report
            else:
                run.report = {"tampered": ["the grader's report came back altered"]}
        else:
            ename = expression.get("ename", "no reply")
            run.report = {"tampered": [f"the grader's re-check failed to run ({ename})"]}
    return run


def _errors(cell) -> list[dict]:
    return [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]


def _stdout(cell) -> str:
    return "".join(
        o.get("text", "")
        for o in cell.get("outputs", [])
        if o.get("output_type") == "stream" and o.get("name") == "stdout"
    )


def score(
    nb,
    chapter: str,
    check_cells: dict[str, int],
    run_error: str | None = None,
    report: dict | None = None,
) -> dict:
    """Score the executed ``nb``; the result dict without ``notebook``.

    ``report`` is the grader's re-check (:func:`ganlab.grading.guard.report`). With it, an
    exercise passes only if its check cell passed *and* the re-check did; any tampering
    scores every exercise 0. Without it (``None``), only the check cells are read.
    """
    tampered = list((report or {}).get("tampered", []))
    rechecks = (report or {}).get("checks", {})
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
        if status == "passed" and report is not None:
            recheck = rechecks.get(exercise.id)
            if recheck is None:
                why = f" ({run_error})" if run_error else ""
                status, message = "error", f"the grader's own re-check did not run{why}"
            elif recheck["status"] != "passed":
                status = "error"
                message = (
                    "the check cell printed a pass, but the grader's own re-check of the "
                    f"final notebook state says {recheck['status']}: {recheck['message']}"
                )
        if tampered:
            status, message = "tampered", "the grading machinery was changed: " + tampered[0]
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
        "tampered": tampered,
    }
    if run_error:
        result["run_error"] = run_error
    return result


def grade_notebook(
    path: str | os.PathLike,
    timeout: int | None = None,
    profile: str = "smoke",
    executed_path: str | os.PathLike | None = None,
    source: bytes | None = None,
) -> dict:
    """Run one submitted notebook from a temporary folder and score its exercises.

    ``timeout`` is in seconds per cell (default :data:`ganlab.runner.CELL_TIMEOUT` of the
    profile); ``profile`` sets ``GANLAB_PROFILE`` for the run. ``source``, if given, is the
    notebook's content as read before any submission ran (:func:`grade_path` passes it, so
    a classmate's run that overwrote this file changes nothing). ``executed_path``, if
    given, receives the executed notebook (feedback for the student).
    """
    path = Path(path)
    timeout = positive_timeout(timeout if timeout is not None else CELL_TIMEOUT[profile])
    text = (source if source is not None else path.read_bytes()).decode("utf-8")
    nb = nbformat.reads(text, as_version=4)
    chapter, check_cells = prepare_for_grading(nb)
    flags = review_flags(nb)
    before = package_fingerprint()
    with tempfile.TemporaryDirectory(prefix="ganlab-grade-") as folder:
        (Path(folder) / path.name).write_text(text, encoding="utf-8")
        run = execute(nb, folder, timeout, profile, chapter=chapter, name=path.name)
    changed = sorted(k for k, v in package_fingerprint().items() if before.get(k) != v)
    report = run.report or {"tampered": [], "checks": {}}
    if changed:
        report["tampered"] = [f"ganlab's files changed on disk: {', '.join(changed)}"] + list(
            report.get("tampered", [])
        )
    if run.report is None and run.error is None and not changed:
        report = None  # nothing to compare with (no final request ran)
    if executed_path is not None:
        nbformat.write(nb, executed_path)
    result = {"notebook": str(path), **score(nb, chapter, check_cells, run.error, report)}
    result["timeouts"], result["review"] = run.timeouts, flags
    if changed:
        error = GradingError(
            f"grading {path} changed ganlab's own files on disk ({', '.join(changed)}): "
            "every later grade would be suspect, so grading stops here. Reinstall ganlab "
            "and grade again; this notebook scored 0 as tampered."
        )
        error.results = [result]
        raise error
    return result


SKIPPED_DIRS = {".ipynb_checkpoints": "Jupyter's autosaves"}


def find_submissions(path: str | os.PathLike) -> tuple[list[Path], list[str]]:
    """The notebooks to grade in ``path`` (a notebook or a folder) and what was skipped, why.

    In a folder: every file ending ``.ipynb`` in any letter case, sorted by name; not
    subfolders (each is named, with how many notebooks it holds), nor other files.
    """
    path = Path(path)
    if path.is_file():
        return [path], []
    if not path.exists():
        raise GradingError(f"no notebook or folder at {path}")
    notebooks, skipped, others = [], [], []
    for entry in sorted(path.iterdir()):
        if entry.is_dir():
            why = SKIPPED_DIRS.get(entry.name)
            if why is None:
                inside = sum(1 for p in entry.rglob("*") if p.suffix.lower() == ".ipynb")
                why = f"a subfolder ({inside} notebook(s) inside; grade it on its own)"
            skipped.append(f"{entry.name}/: {why}")
        elif entry.suffix.lower() == ".ipynb":
            notebooks.append(entry)
        else:
            others.append(entry.name)
    if others:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        skipped.append(f"{len(others)} file(s) not ending .ipynb: {shown}")
    return notebooks, skipped


def check_csv_path(path: str | os.PathLike) -> Path:
    """``path`` if a CSV can be written there (checked before any grading); else GradingError."""
    path = Path(path)
    if path.is_dir():
        raise GradingError(f"--csv {path} is a folder: give a file name, e.g. {path}/grades.csv")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent  # the folders to create go under the first one that exists
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise GradingError(f"--csv {path}: cannot create files in {parent}")
    if path.exists() and not os.access(path, os.W_OK):
        raise GradingError(f"--csv {path} exists and is not writable")
    return path


def _not_graded(notebook, error) -> dict:
    return {
        "notebook": str(notebook),
        "chapter": None,
        "score": 0,
        "max_score": 0,
        "exercises": [],
        "errors": [],
        "error": error,
    }


def grade_path(
    path: str | os.PathLike,
    csv: str | os.PathLike | None = None,
    timeout: int | None = None,
    profile: str = "smoke",
) -> list[dict]:
    """Grade one notebook, or every notebook in a folder (see :func:`find_submissions`).

    Every notebook is read before the first one runs. In a folder, a notebook that cannot
    be graded at all (unreadable, not an assignment) gets a row with score 0 and an
    ``error`` field instead of stopping the others; a notebook whose run changed another
    notebook of the folder on disk gets a ``warning``. ``csv`` (checked before grading)
    writes one row per notebook: notebook, score, max_score, then the points of each
    exercise (columns ``chapter/id``). Raises :class:`GradingError` for an empty folder.
    """
    timeout = positive_timeout(timeout if timeout is not None else CELL_TIMEOUT[profile])
    if csv is not None:
        check_csv_path(csv)
    notebooks, skipped = find_submissions(path)
    if not notebooks:
        why = "; ".join(skipped) or "the folder is empty"
        raise GradingError(f"no notebooks to grade in {path} ({why})")
    originals = {notebook: _read(notebook) for notebook in notebooks}
    seen = dict(originals)  # what the folder held at the last look
    results: list[dict] = []
    for notebook in notebooks:
        if originals[notebook] is None:
            results.append(_not_graded(notebook, "cannot read it"))
            continue
        try:
            result = grade_notebook(
                notebook, timeout=timeout, profile=profile, source=originals[notebook]
            )
        except GradingError as error:
            error.results = results + getattr(error, "results", [])
            raise
        except Exception as error:
            result = _not_graded(notebook, f"{type(error).__name__}: {error}")
        changed = []
        for other in notebooks:
            now = _read(other)
            if now != seen[other]:
                changed.append(other.name)
                seen[other] = now
        if changed:
            result["warning"] = (
                f"while it ran, {', '.join(changed)} changed on disk in the submissions "
                "folder (grades use the copies read before grading)"
            )
        results.append(result)
    if csv is not None:
        write_csv(results, csv)
    return results


def _read(path: Path) -> bytes | None:
    """The file's bytes, or None if it is gone or unreadable."""
    try:
        return path.read_bytes()
    except OSError:
        return None


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


def format_table(results: list[dict], skipped: list[str] | None = None) -> str:
    """A score table for the terminal: one block per notebook, one line per exercise.

    The closing line gives the mean score per chapter over the graded notebooks only
    (a notebook that is not an assignment is listed, not averaged in); ``skipped`` lists
    what a folder held that was not graded.
    """
    lines = []
    for result in results:
        chapter = result["chapter"] or "not graded"
        lines.append(
            f"{result['notebook']}  [{chapter}]  score {result['score']}/{result['max_score']}"
        )
        if result.get("error"):
            lines.append(f"  not graded: {result['error']}")
        for why in result.get("tampered", []):
            lines.append(f"  TAMPERED: {why}")
        for e in result["exercises"]:
            message = (e["message"] or "").strip().splitlines()
            first = message[0] if message else ""
            if len(first) > 90:
                first = first[:87] + "..."
            lines.append(
                f"  {e['id']:>3}  {e['title'][:36]:<36}  {e['status']:<15}  "
                f"{e['points']:>2}/{e['max_points']:<2}  {first}".rstrip()
            )
        for timeout in result.get("timeouts", []):
            lines.append(f"  timeout: {timeout}")
        if result.get("run_error"):
            lines.append(f"  run stopped: {result['run_error']}")
        for flag in result.get("review", []):
            lines.append(f"  review: {flag}")
        if result.get("warning"):
            lines.append(f"  warning: {result['warning']}")
        lines.append("")
    graded = [r for r in results if r["chapter"]]
    chapters = sorted({r["chapter"] for r in graded})
    for chapter in chapters:
        rows = [r for r in graded if r["chapter"] == chapter]
        mean = sum(r["score"] for r in rows) / len(rows)
        lines.append(
            f"{chapter}: {len(rows)} notebook(s) graded, mean score {mean:.2f}/"
            f"{rows[0]['max_score']}"
        )
    if len(graded) < len(results):
        lines.append(f"{len(results) - len(graded)} notebook(s) not graded (not in the mean)")
    for why in skipped or []:
        lines.append(f"skipped {why}")
    return "\n".join(lines).rstrip() + "\n"
