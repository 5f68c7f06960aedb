"""Build ``exercises/`` from ``solutions/`` and check that they are up to date.

A solution notebook (``solutions/NN_name.ipynb``, metadata ``{"ganlab": {"chapter": ...}}``)
marks each answer nbgrader's way, inside a code cell::

    def generator_loss(fake_logits):
        ### HINT: BCE with logits against a target of ones        <- optional, kept
        ### BEGIN SOLUTION
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))
        ### END SOLUTION

and follows it with a check cell (metadata ``{"ganlab": {"check": "cgan/3"}}``). The
exercise notebook replaces each block with ``raise NotImplementedError("Exercise 3: <hint>")``
at the block's indentation and clears every output. Building is deterministic: the same
solution always gives the same bytes, which is how :func:`check_exercises` spots stale files.
"""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from ganlab.grading.registry import check_source, get_exercises, load_checks

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
HINT = "### HINT:"
DEFAULT_HINT = "write your answer here"

_CHECK_SOURCE = re.compile(
    r'^from ganlab\.grading import check\ncheck\("([\w-]+)", "(\w+)", globals\(\)\)\s*$'
)


def check_key(cell) -> str | None:
    """``"chapter/id"`` if ``cell`` is a check cell (by its metadata, else by its source)."""
    key = cell.get("metadata", {}).get("ganlab", {}).get("check")
    if key:
        return str(key)
    if cell.get("cell_type") == "code":
        match = _CHECK_SOURCE.match(cell.get("source", ""))
        if match:
            return f"{match.group(1)}/{match.group(2)}"
    return None


def is_answer_cell(cell) -> bool:
    """A code cell holding at least one solution block."""
    return cell.get("cell_type") == "code" and any(
        line.strip() == BEGIN for line in cell.get("source", "").splitlines()
    )


def notebook_chapter(nb) -> str | None:
    """The chapter named in the notebook's metadata, else by its first check cell."""
    chapter = nb.get("metadata", {}).get("ganlab", {}).get("chapter")
    if chapter:
        return str(chapter)
    for cell in nb.cells:
        key = check_key(cell)
        if key:
            return key.split("/", 1)[0]
    return None


@dataclass(frozen=True)
class ExerciseCells:
    """Where one exercise lives in a solution notebook (cell indices)."""

    key: str
    answer_cells: tuple[int, ...]
    check_cell: int


def find_exercises(nb) -> tuple[list[ExerciseCells], list[str]]:
    """Pair every check cell with the answer cells between it and the previous check cell.

    Returns the pairs and a list of problems (an answer with no check after it, a check
    with no answer, solution markers outside code cells).
    """
    found, problems, pending = [], [], []
    for i, cell in enumerate(nb.cells):
        lines = [line.strip() for line in cell.source.splitlines()]
        for marker in (BEGIN, END):
            mentions = cell.source.count(marker.removeprefix("### "))
            marker_lines = lines.count(marker) if cell.cell_type == "code" else 0
            if mentions != marker_lines:  # the marker text outside a marker line
                problems.append(f"cell {i} ({cell.cell_type}) mentions a solution marker")
                break
        if is_answer_cell(cell):
            pending.append(i)
        key = check_key(cell)
        if key:
            found.append(ExerciseCells(key, tuple(pending), i))
            pending = []
    if pending:
        problems.append(f"answer cell(s) {pending} have no check cell after them")
    return found, problems


def validate_solution(nb, name: str = "notebook") -> list[str]:
    """Problems that stop ``nb`` from being a chapter's solution notebook (empty: fine).

    Every registered exercise of the chapter must have exactly one answer cell followed by
    exactly one check cell whose source is the canonical two lines.
    """
    chapter = notebook_chapter(nb)
    if chapter is None:
        return [f'{name}: no metadata {{"ganlab": {{"chapter": ...}}}} and no check cells']
    try:
        registered = get_exercises(chapter)
    except KeyError as error:
        return [f"{name}: {error.args[0]}"]
    found, problems = find_exercises(nb)
    problems = [f"{name}: {p}" for p in problems]
    by_key: dict[str, list[ExerciseCells]] = {}
    for ex in found:
        by_key.setdefault(ex.key, []).append(ex)
    for exercise in registered:
        entries = by_key.pop(exercise.key, [])
        if len(entries) != 1:
            problems.append(
                f"{name}: exercise {exercise.key} needs exactly one check cell, found "
                f"{len(entries)}"
            )
            continue
        (entry,) = entries
        if len(entry.answer_cells) != 1:
            problems.append(
                f"{name}: exercise {exercise.key} needs exactly one answer cell before its "
                f"check cell {entry.check_cell}, found {len(entry.answer_cells)}"
            )
        cell = nb.cells[entry.check_cell]
        expected = check_source(exercise.chapter, exercise.id)
        if cell.source != expected:
            problems.append(f"{name}: check cell {entry.check_cell} is not exactly {expected!r}")
        if cell.metadata.get("ganlab", {}).get("check") != exercise.key:
            problems.append(
                f"{name}: check cell {entry.check_cell} needs the metadata "
                f'{{"ganlab": {{"check": "{exercise.key}"}}}}'
            )
    for key in by_key:
        problems.append(f"{name}: check cell for {key}, which is not a registered exercise")
    return problems


def strip_solution(source: str, exercise_id: str) -> str:
    """Replace every solution block of one cell by ``raise NotImplementedError(...)``.

    The ``### HINT:`` line(s) most recently seen before a block give the error's message
    (consecutive hint lines are joined into one).
    """
    out: list[str] = []
    hint, inside, hint_continues = None, False, False
    for number, line in enumerate(source.splitlines(), start=1):
        stripped = line.strip()
        is_hint = not inside and stripped.startswith(HINT)
        if is_hint:  # consecutive HINT lines form one hint
            text = stripped[len(HINT) :].strip()
            hint = f"{hint} {text}" if hint_continues and hint else text
        hint_continues = is_hint
        if stripped == BEGIN:
            if inside:
                raise ValueError(f"line {number}: {BEGIN} inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            message = json.dumps(f"Exercise {exercise_id}: {hint or DEFAULT_HINT}")
            out.append(f"{indent}raise NotImplementedError({message})")
        elif stripped == END:
            if not inside:
                raise ValueError(f"line {number}: {END} without {BEGIN}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN} without {END}")
    return "\n".join(out)


def make_exercise(solution, name: str = "notebook"):
    """The exercise notebook of one solution notebook (a new object; ``solution`` is kept)."""
    problems = validate_solution(solution, name)
    if problems:
        raise ValueError("cannot build exercises:\n" + "\n".join(problems))
    nb = copy.deepcopy(solution)
    nb.nbformat, nb.nbformat_minor = 4, max(5, nb.get("nbformat_minor", 5))
    found, _ = find_exercises(nb)
    exercise_of = {i: ex.key.split("/", 1)[1] for ex in found for i in ex.answer_cells}
    for i, cell in enumerate(nb.cells):
        cell.setdefault("id", f"cell-{i}")  # older notebooks have no ids; keep builds stable
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if i in exercise_of:
                try:
                    cell.source = strip_solution(cell.source, exercise_of[i])
                except ValueError as error:
                    raise ValueError(f"{name}, cell {i}: {error}") from None
    nb.metadata.setdefault("ganlab", {})["generated_from"] = f"solutions/{Path(name).name}"
    text = render(nb)
    for marker in (BEGIN, END):
        if marker.removeprefix("### ") in text:
            raise ValueError(f"cannot build exercises: {name}: {marker!r} would survive")
    return nb


def render(nb) -> str:
    """Deterministic JSON text of a notebook (sorted keys, one-space indent, final newline)."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def _solution_paths(solutions_dir: Path) -> list[Path]:
    return sorted(p for p in solutions_dir.glob("*.ipynb") if p.is_file())


def build_exercises(
    solutions_dir: str | os.PathLike = "solutions", out_dir: str | os.PathLike = "exercises"
) -> list[Path]:
    """Write ``out_dir/NN_name.ipynb`` for every ``solutions_dir/NN_name.ipynb``.

    Returns the written paths. Raises ``ValueError`` listing the problems if a solution
    notebook is malformed (see :func:`validate_solution`); nothing is written then.
    """
    solutions_dir, out_dir = Path(solutions_dir), Path(out_dir)
    paths = _solution_paths(solutions_dir)
    if not paths:
        raise FileNotFoundError(f"no solution notebooks (*.ipynb) in {solutions_dir}")
    texts = {}
    for path in paths:
        texts[path.name] = render(make_exercise(nbformat.read(path, as_version=4), path.name))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in texts.items():
        target = out_dir / name
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
        written.append(target)
    return written


def check_exercises(
    solutions_dir: str | os.PathLike = "solutions", out_dir: str | os.PathLike = "exercises"
) -> list[str]:
    """Problems with ``out_dir`` (empty when every exercise notebook is up to date).

    Reports malformed solutions, registered chapters without a solution notebook, and
    exercise notebooks that are missing, stale (differ from a fresh build) or extra.
    """
    load_checks()
    solutions_dir, out_dir = Path(solutions_dir), Path(out_dir)
    problems: list[str] = []
    chapters = set()
    paths = _solution_paths(solutions_dir)
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        chapters.add(notebook_chapter(nb))
        malformed = validate_solution(nb, str(path))
        if malformed:
            problems += malformed
            continue
        target = out_dir / path.name
        if not target.exists():
            problems.append(f"missing: {target} (run `ganlab exercises build`)")
        elif target.read_text(encoding="utf-8") != render(make_exercise(nb, path.name)):
            problems.append(f"stale: {target} differs from a fresh build of {path}")
    from ganlab.grading.checks import PUBLISHED

    for chapter in sorted(set(PUBLISHED) - chapters):
        problems.append(f"no solution notebook in {solutions_dir} for chapter {chapter!r}")
    solution_names = {p.name for p in paths}
    for extra in sorted(out_dir.glob("*.ipynb")):
        if extra.name not in solution_names:
            problems.append(f"extra: {extra} has no solution notebook in {solutions_dir}")
    return problems
