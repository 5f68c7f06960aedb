"""The assignment machinery: the registry's ``check``, building exercises, grading.

The end-to-end tests run real notebooks in real kernels (about 30 s together on 2 cores):
the solution scores full marks, a freshly built exercise notebook scores 0 with nothing but
NotImplementedError, and a tampered submission is graded with its check cells restored.
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import nbformat
import pytest
import torch

from ganlab.grading import CheckFailed, check, check_source, get_exercise, get_exercises
from ganlab.grading.build import (
    BEGIN,
    END,
    build_exercises,
    check_exercises,
    find_exercises,
    make_exercise,
    notebook_chapter,
    render,
    strip_solution,
    validate_solution,
)
from ganlab.grading.grade import format_table, grade_notebook, grade_path, prepare_for_grading

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = ROOT / "solutions"
EXERCISES_DIR = ROOT / "exercises"


def read_solution():
    return nbformat.read(SOLUTIONS / "01_cgan.ipynb", as_version=4)


# --- check() -------------------------------------------------------------------------------


def test_check_names_a_missing_definition():
    with pytest.raises(CheckFailed, match="`discriminator_loss` is not defined"):
        check("cgan", "2", {})


def test_check_lets_not_implemented_error_through_unchanged():
    error = NotImplementedError("Exercise 3: write your answer here")

    def generator_loss(fake_logits):
        raise error

    with pytest.raises(NotImplementedError) as info:
        check("cgan", "3", {"generator_loss": generator_loss})
    assert info.value is error and not getattr(error, "__notes__", None)


def test_check_notes_which_exercise_another_error_came_from():
    def generator_loss(fake_logits):
        return fake_logits.nonexistent

    with pytest.raises(AttributeError) as info:
        check("cgan", "3", {"generator_loss": generator_loss})
    assert "Exercise 3" in info.value.__notes__[0]


def test_unknown_exercise_is_a_key_error():
    with pytest.raises(KeyError, match="has no exercise '9'"):
        check("cgan", "9", {})


# --- ganlab's own implementation handed in -------------------------------------------------

PACKAGE_ANSWERS = [  # answers a student could import from the package the lecture uses
    ("cgan", "2", "discriminator_loss", "ganlab.models.cgan", "discriminator_loss"),
    ("cgan", "3", "generator_loss", "ganlab.models.cgan", "generator_loss"),
    ("cgan", "4", "PaperGenerator", "ganlab.models.cgan", "PaperGenerator"),
    (
        "gan-int-cls",
        "1",
        "matching_aware_d_loss",
        "ganlab.models.gan_int_cls",
        "discriminator_loss",
    ),
    ("gan-int-cls", "2", "interpolate_text", "ganlab.models.gan_int_cls", "interpolate_embeddings"),
    ("gan-int-cls", "3", "replicate_text", "ganlab.models.gan_int_cls", "replicate_text"),
    ("stackgan", "2", "ResidualBlock", "ganlab.models.stackgan", "ResidualBlock"),
    ("attngan", "1", "word_attention", "ganlab.nn.attention", "word_attention"),
    ("attngan", "2", "damsm_word_similarity", "ganlab.text.damsm", "word_level_similarity"),
    ("attngan", "3", "glu", "ganlab.nn.glu", "glu"),
]


@pytest.mark.parametrize("chapter, exercise_id, name, module, attribute", PACKAGE_ANSWERS)
def test_ganlabs_own_implementation_is_refused(chapter, exercise_id, name, module, attribute):
    import importlib

    original = getattr(importlib.import_module(module), attribute)
    want = f"Exercise {exercise_id} \\(.*\\): you handed in ganlab's own `{module}.{attribute}`"
    with pytest.raises(CheckFailed, match=want):
        check(chapter, exercise_id, {name: original})


def test_every_chapters_exercises_refuse_a_package_object():
    """The refusal sits where submissions are looked up, so it holds for every exercise."""
    from ganlab.grading.registry import EXERCISES, load_checks
    from ganlab.models.cgan import generator_loss

    load_checks()
    assert len(EXERCISES) == 8
    for chapter, exercises in EXERCISES.items():
        for exercise in exercises:
            answers = dict.fromkeys(exercise.names, generator_loss)
            with pytest.raises(CheckFailed, match="ganlab's own") as info:
                check(chapter, exercise.id, answers)
            assert str(info.value).startswith(f"Exercise {exercise.id} ({exercise.title}): ")


def test_disguised_package_objects_are_refused():
    import functools

    from ganlab.models import cgan, stackgan
    from ganlab.nn.glu import GLU

    class Block(stackgan.ResidualBlock):  # the answer inherited, nothing written
        pass

    disguised = {
        ("cgan", "3", "generator_loss"): functools.partial(cgan.generator_loss),
        ("attngan", "3", "glu"): GLU(),  # a module that computes the answer when called
        ("stackgan", "2", "ResidualBlock"): Block,
    }
    for (chapter, exercise_id, name), answer in disguised.items():
        with pytest.raises(CheckFailed, match="ganlab's own"):
            check(chapter, exercise_id, {name: answer})


def test_an_answer_of_ones_own_that_uses_the_package_is_accepted(capsys):
    from ganlab.models.cgan import one_hot

    def condition_on_label(h, y, num_classes=10):  # calls a package helper inside: fine
        code = one_hot(y, num_classes).to(h.dtype)
        if h.dim() == 4:
            code = code[:, :, None, None].expand(-1, -1, *h.shape[2:])
        return torch.cat([h, code], dim=1)

    check("cgan", "1", {"condition_on_label": condition_on_label})
    assert capsys.readouterr().out.strip() == get_exercise("cgan", "1").passed_line()


def test_the_graders_recheck_refuses_a_package_object_too():
    import json
    import secrets

    import ganlab
    from ganlab.grading import guard
    from ganlab.models.cgan import generator_loss

    nonce = secrets.token_hex(8)
    guard.arm(nonce, ganlab.__file__)
    try:
        report = json.loads(guard.report(nonce, "cgan", {"generator_loss": generator_loss}))
    finally:
        guard._SNAPSHOTS.pop(nonce)
    assert report["tampered"] == []
    assert report["checks"]["3"]["status"] == "failed"
    assert "ganlab's own `ganlab.models.cgan.generator_loss`" in report["checks"]["3"]["message"]


# --- building exercises --------------------------------------------------------------------


def test_strip_solution_keeps_indentation_hints_and_surrounding_code():
    source = "\n".join(
        [
            "class G:",
            "    def f(self):",
            "        ### HINT: first",
            "        ### HINT: second",
            f"        {BEGIN}",
            "        return 1",
            f"        {END}",
            "",
            "    def g(self):",
            f"        {BEGIN}",
            "        return 2",
            f"        {END}",
            "",
            "    def h(self):",
            "        ### HINT: third",
            f"        {BEGIN}",
            "        return 3",
            f"        {END}",
            "x = 3",
        ]
    )
    # A hint holds for the blocks after it, until the next hint.
    stripped = strip_solution(source, "7")
    assert stripped.splitlines() == [
        "class G:",
        "    def f(self):",
        "        ### HINT: first",
        "        ### HINT: second",
        '        raise NotImplementedError("Exercise 7: first second")',
        "",
        "    def g(self):",
        '        raise NotImplementedError("Exercise 7: first second")',
        "",
        "    def h(self):",
        "        ### HINT: third",
        '        raise NotImplementedError("Exercise 7: third")',
        "x = 3",
    ]
    compile(stripped, "<exercise>", "exec")
    default = strip_solution(f"def f():\n    {BEGIN}\n    pass\n    {END}", "2")
    assert (
        default.splitlines()[1]
        == '    raise NotImplementedError("Exercise 2: write your answer here")'
    )


@pytest.mark.parametrize(
    "source, problem",
    [
        (f"{BEGIN}\nx = 1", "without"),
        (f"x = 1\n{END}", "without"),
        (f"{BEGIN}\n{BEGIN}\n{END}", "inside another"),
    ],
)
def test_strip_solution_rejects_unbalanced_markers(source, problem):
    with pytest.raises(ValueError, match=problem):
        strip_solution(source, "1")


def test_hint_with_quotes_is_a_valid_string():
    hint = '### HINT: use "ones" and \\ backslashes'
    source = f"def f():\n    {hint}\n    {BEGIN}\n    pass\n    {END}"
    namespace: dict = {}
    exec(strip_solution(source, "2"), namespace)
    with pytest.raises(NotImplementedError, match='Exercise 2: use "ones" and'):
        namespace["f"]()


def test_solution_notebook_is_well_formed():
    nb = read_solution()
    assert validate_solution(nb) == []
    assert nb.metadata["ganlab"] == {"chapter": "cgan"}
    assert nb.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    # the solved copy stores the outputs of a smoke run, without errors
    assert all(o.output_type != "error" for c in code for o in c.get("outputs", []))
    first_code = code[0]
    assert "show_profile()" in first_code.source
    assert "ganlab profile: smoke" in "".join(o.get("text", "") for o in first_code.outputs)
    found, _ = find_exercises(nb)
    assert [f.key for f in found] == [e.key for e in get_exercises("cgan")]


def test_build_is_deterministic_and_leaves_no_solution(tmp_path):
    first = build_exercises(SOLUTIONS, tmp_path / "a")
    second = build_exercises(SOLUTIONS, tmp_path / "b")
    names = sorted(p.name for p in SOLUTIONS.glob("*.ipynb"))
    assert [p.name for p in first] == [p.name for p in second] == names
    assert names[0] == "01_cgan.ipynb"
    for a, b in zip(first, second, strict=True):
        assert a.read_text(encoding="utf-8") == b.read_text(encoding="utf-8")
    text = first[0].read_text(encoding="utf-8")
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    # The answers themselves are gone, e.g. the stable loss and the paper's layer widths.
    assert "binary_cross_entropy_with_logits(real_logits" not in text
    assert "nn.Linear(1200, 784)" not in text
    nb = nbformat.reads(text, as_version=4)
    found, _ = find_exercises(read_solution())
    for exercise in found:
        source = nb.cells[exercise.answer_cells[0]].source
        exercise_id = exercise.key.split("/")[1]
        assert f'raise NotImplementedError("Exercise {exercise_id}: ' in source
        compile(source, exercise.key, "exec")
    assert all(c.get("outputs", []) == [] for c in nb.cells)
    assert all(c.get("execution_count") is None for c in nb.cells if c.cell_type == "code")


def test_committed_exercises_are_up_to_date():
    assert check_exercises(SOLUTIONS, EXERCISES_DIR) == []


HEADING = re.compile(r"^## Exercise (\w+):.*\((\d+) points?\)\s*$")
TABLE_ROW = re.compile(r"^\| (\w+) \|.*\| (\d+) \|\s*$")


def stated_points(nb) -> tuple[dict[str, int], dict[str, int]]:
    """The points each exercise's heading states, and those of the opening table's rows."""
    headings, table = {}, {}
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for line in cell.source.splitlines():
            if line.startswith("## Exercise"):
                match = HEADING.match(line)
                assert match, f"an exercise heading without its points: {line!r}"
                headings[match.group(1)] = int(match.group(2))
            elif (match := TABLE_ROW.match(line)) and match.group(1).isdigit():
                table[match.group(1)] = int(match.group(2))
    return headings, table


@pytest.mark.parametrize("path", sorted(SOLUTIONS.glob("*.ipynb")), ids=lambda p: p.name)
def test_the_notebooks_state_the_registrys_points(path):
    """Each heading "## Exercise N: ... (P points)", and the opening table where there is
    one, gives the points the registry awards (a mismatch misleads the student)."""
    nb = nbformat.read(path, as_version=4)
    registry = {e.id: e.points for e in get_exercises(notebook_chapter(nb))}
    headings, table = stated_points(nb)
    assert headings == registry, f"{path.name}: headings {headings}, registry {registry}"
    if table:
        assert table == registry, f"{path.name}: table {table}, registry {registry}"


def test_a_heading_with_the_wrong_points_is_caught():
    nb = read_solution()
    for cell in nb.cells:
        if cell.cell_type == "markdown" and cell.source.startswith("## Exercise 3:"):
            cell.source = cell.source.replace("(1 point)", "(2 points)", 1)
    headings, _ = stated_points(nb)
    assert headings["3"] == 2 != get_exercise("cgan", "3").points


def _copy_solutions(tmp_path) -> Path:
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    for path in SOLUTIONS.glob("*.ipynb"):  # every registered chapter needs its solution
        shutil.copy(path, solutions / path.name)
    return solutions


def test_check_exercises_finds_stale_missing_and_extra(tmp_path):
    solutions = _copy_solutions(tmp_path)
    out = tmp_path / "exercises"
    assert any(p.startswith("missing:") for p in check_exercises(solutions, out))
    build_exercises(solutions, out)
    assert check_exercises(solutions, out) == []

    nb = nbformat.read(solutions / "01_cgan.ipynb", as_version=4)
    nb.cells[0].source += "\n\nOne more sentence."
    nbformat.write(nb, solutions / "01_cgan.ipynb")
    (out / "99_extra.ipynb").write_text("{}", encoding="utf-8")
    problems = check_exercises(solutions, out)
    assert any(p.startswith("stale:") and "01_cgan" in p for p in problems)
    assert any(p.startswith("extra:") and "99_extra" in p for p in problems)

    build_exercises(solutions, out)
    assert [p for p in check_exercises(solutions, out) if not p.startswith("extra:")] == []


def test_check_exercises_sees_a_hand_edited_exercise(tmp_path):
    solutions = _copy_solutions(tmp_path)
    path = build_exercises(solutions, tmp_path / "exercises")[0]
    path.write_text(path.read_text(encoding="utf-8").replace("Exercise 1:", "Exercise 1 -"))
    assert any(p.startswith("stale:") for p in check_exercises(solutions, path.parent))


def _without_cell(nb, index):
    nb.cells.pop(index)
    return nb


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("delete a check cell", "exactly one check cell, found 0"),
        ("duplicate a check cell", "exactly one check cell, found 2"),
        ("delete an answer cell", "exactly one answer cell"),
        ("edit a check cell", "is not exactly"),
        ("drop a check cell's metadata", "needs the metadata"),
        ("quote the marker in code", "mentions a solution marker"),
        ("mention the marker in markdown", "mentions a solution marker"),
    ],
)
def test_malformed_solutions_are_refused(tmp_path, damage, problem):
    nb = read_solution()
    found, _ = find_exercises(nb)
    first = found[0]
    if damage == "delete a check cell":
        nb.cells.pop(first.check_cell)
    elif damage == "duplicate a check cell":
        duplicate = nbformat.from_dict(nb.cells[first.check_cell])
        duplicate["id"] = "duplicate-check"
        nb.cells.insert(first.check_cell, duplicate)
    elif damage == "delete an answer cell":
        nb.cells.pop(first.answer_cells[0])
    elif damage == "edit a check cell":
        nb.cells[first.check_cell].source += "\nprint('hi')"
    elif damage == "drop a check cell's metadata":
        nb.cells[first.check_cell].metadata = {}
    elif damage == "quote the marker in code":
        nb.cells[1].source += f"\nmarker = '{BEGIN}'"
    else:
        nb.cells[0].source += f"\n\n{BEGIN}"
    assert any(problem in p for p in validate_solution(nb))
    with pytest.raises(ValueError, match="cannot build exercises"):
        make_exercise(nb)
    solutions = tmp_path / "solutions"
    solutions.mkdir()
    nbformat.write(nb, solutions / "01_cgan.ipynb")
    with pytest.raises(ValueError, match=problem.split(",")[0]):
        build_exercises(solutions, tmp_path / "exercises")
    assert not (tmp_path / "exercises").exists()


def test_render_is_stable_json():
    nb = make_exercise(read_solution(), "01_cgan.ipynb")
    text = render(nb)
    assert text.endswith("\n") and render(nbformat.reads(text, as_version=4)) == text


# --- grading -------------------------------------------------------------------------------


def tampered_submission():
    """The solution, minus the training payoff, with its check cells abused in five ways.

    1: check replaced by ``pass``            -> restored, the right answer passes
    2: wrong answer, check prints a pass     -> restored, fails
    3: check cell deleted                    -> missing
    4: check cell turned into markdown       -> restored as code, passes
    5: metadata lost, canonical source kept  -> recognised, passes
    """
    nb = read_solution()
    found, _ = find_exercises(nb)
    checks = {f.key: f.check_cell for f in found}
    answer_2 = nb.cells[found[1].answer_cells[0]]
    answer_2.source = answer_2.source.replace("real_loss + fake_loss", "real_loss - fake_loss")
    nb.cells[checks["cgan/1"]].source = "pass"
    fake_pass = get_exercise("cgan", "2").passed_line()
    nb.cells[checks["cgan/2"]].source = f"print({fake_pass!r})"
    markdown = nbformat.v4.new_markdown_cell("done!", metadata={"ganlab": {"check": "cgan/4"}})
    markdown["id"] = "tampered-4"
    nb.cells[checks["cgan/4"]] = markdown
    nb.cells[checks["cgan/5"]].metadata = {}
    payoff = checks["cgan/7"] + 1
    del nb.cells[payoff:]  # the training payoff: not needed here, and slow
    nb.cells.pop(checks["cgan/3"])
    return nb


def test_prepare_for_grading_restores_check_cells():
    nb = tampered_submission()
    stale = nbformat.v4.new_output("error", ename="ValueError", evalue="old run", traceback=[])
    nb.cells[1].outputs = [stale]
    nb.cells[1].execution_count = 3
    chapter, cells = prepare_for_grading(nb)
    assert chapter == "cgan"
    assert sorted(cells) == ["cgan/1", "cgan/2", "cgan/4", "cgan/5", "cgan/6", "cgan/7"]
    for key, index in cells.items():
        cell = nb.cells[index]
        assert cell.cell_type == "code"
        assert cell.source == check_source(*key.split("/"))
        assert cell.metadata["ganlab"]["check"] == key
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)


def test_prepare_for_grading_refuses_a_notebook_without_a_chapter():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    with pytest.raises(ValueError, match="not a GAN Lab assignment"):
        prepare_for_grading(nb)


def test_grading_a_tampered_submission(tmp_path):
    path = tmp_path / "mallory.ipynb"
    nbformat.write(tampered_submission(), path)
    result = grade_notebook(path, timeout=120)
    statuses = {e["id"]: e["status"] for e in result["exercises"]}
    assert statuses == {
        "1": "passed", "2": "failed", "3": "missing", "4": "passed", "5": "passed",
        "6": "failed", "7": "passed",
    }  # fmt: skip
    # 6 fails too: the training step calls the student's (wrong) discriminator_loss
    assert result["score"] == 2 + 3 + 1 + 1 and result["max_score"] == 13
    failed = result["exercises"][1]
    assert failed["points"] == 0
    assert failed["message"].startswith("Exercise 2 (the discriminator's loss): for 6 real")
    assert "mallory.ipynb" in format_table([result])


def test_a_cell_past_the_timeout_is_interrupted_and_grading_goes_on(tmp_path):
    nb = read_solution()
    found, _ = find_exercises(nb)
    ex3 = found[2]
    cells = [nbformat.v4.new_code_cell("import torch\nimport torch.nn.functional as F")]
    cells.append(nbformat.v4.new_code_cell("import time\ntime.sleep(60)"))
    cells += [nb.cells[ex3.answer_cells[0]], nb.cells[ex3.check_cell]]
    slow = nbformat.v4.new_notebook(cells=cells, metadata={"ganlab": {"chapter": "cgan"}})
    for i, cell in enumerate(slow.cells):
        cell["id"] = f"slow-{i}"
    nbformat.write(slow, tmp_path / "slow.ipynb")
    result = grade_notebook(tmp_path / "slow.ipynb", timeout=3)
    statuses = [e["status"] for e in result["exercises"]]
    assert statuses == ["missing", "missing", "passed"] + ["missing"] * 4
    assert result["score"] == 1  # exercise 3 is worth 1 point
    assert [e["cell"] for e in result["errors"]] == [1]


END_TO_END = [  # every solution notebook: its chapter, total points and exercise count
    ("01_cgan.ipynb", "cgan", 13, 7),
    ("02_gan_int_cls.ipynb", "gan-int-cls", 9, 5),
    ("03_stackgan.ipynb", "stackgan", 8, 4),
    ("04_attngan.ipynb", "attngan", 9, 5),
    ("05_pggan.ipynb", "pggan", 12, 6),
    ("06_stylegan.ipynb", "stylegan", 10, 5),
    ("07_spade.ipynb", "spade", 10, 5),
    ("08_stargan_v2.ipynb", "stargan-v2", 10, 5),
]


def test_every_solution_notebook_is_graded_end_to_end():
    """The suite runs solutions/ only through the grader (below), not again under nbval: so
    every solution notebook must be in the end-to-end list."""
    assert sorted(name for name, *_ in END_TO_END) == sorted(
        p.name for p in SOLUTIONS.glob("*.ipynb")
    )


@pytest.mark.parametrize("name, chapter, points, count", END_TO_END)
def test_end_to_end_solution_full_marks_exercise_zero(tmp_path, name, chapter, points, count):
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(SOLUTIONS / name, submissions / "a_solution.ipynb")
    built = {p.name: p for p in build_exercises(SOLUTIONS, tmp_path / "exercises")}[name]
    shutil.copy(built, submissions / "b_exercise.ipynb")
    (submissions / "c_broken.ipynb").write_text("not json", encoding="utf-8")

    table_csv = tmp_path / "scores.csv"
    results = grade_path(submissions, csv=table_csv, timeout=300)
    solution, exercise, broken = results

    assert solution["chapter"] == chapter
    assert solution["score"] == solution["max_score"] == points, format_table([solution])
    assert solution["errors"] == []
    assert all(e["status"] == "passed" for e in solution["exercises"])

    assert exercise["score"] == 0 and exercise["max_score"] == points
    assert [e["status"] for e in exercise["exercises"]] == ["not_implemented"] * count
    # Every error raised anywhere while running the exercise notebook is NotImplementedError:
    # the checks and the training payoff fail only because the answers are missing.
    assert exercise["errors"], "running the exercise notebook raised nothing"
    assert {e["ename"] for e in exercise["errors"]} == {"NotImplementedError"}
    assert "run_error" not in exercise

    assert broken["score"] == 0 and "error" in broken

    with open(table_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [Path(r["notebook"]).name for r in rows] == [
        "a_solution.ipynb",
        "b_exercise.ipynb",
        "c_broken.ipynb",
    ]
    assert rows[0]["score"] == rows[0]["max_score"] == str(points)
    ids = "1234567"[:count]
    want = {
        "cgan": ["2", "2", "1", "3", "1", "3", "1"],
        "gan-int-cls": ["2", "1", "2", "3", "1"],
        "stackgan": ["2", "2", "3", "1"],
        "attngan": ["2", "2", "1", "3", "1"],
        "pggan": ["2"] * 6,
        "stylegan": ["2"] * 5,
        "spade": ["2"] * 5,
        "stargan-v2": ["2"] * 5,
    }[chapter]
    assert [rows[0][f"{chapter}/{i}"] for i in ids] == want
    assert [rows[1][f"{chapter}/{i}"] for i in ids] == ["0"] * count
    table = format_table(results)
    assert f"score {points}/{points}" in table
    assert "not_implemented" in table and "not graded" in table
