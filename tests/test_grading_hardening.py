"""The grader against hostile or careless submissions and teachers (issue 13, item 4).

One folder of four tiny chapter-1 submissions is graded once, in real kernels (about 25 s
on 2 cores), and several tests read the result:

* ``a_attacker``: overwrites its classmates' notebooks, then loops forever catching
  ``KeyboardInterrupt`` (the grader must kill it, name it, and go on);
* ``b_classmate``: answers exercise 3 correctly (it must still score, from the copy read
  before grading);
* ``c_forger``: answers nothing and replaces ``ganlab.grading.check`` with one that prints
  "passed" (it must score 0, marked tampered);
* ``d_restorer``: the same forgery, undone in its last cell (the grader's own re-check must
  still score it 0).

Everything else (the snapshot of the check machinery, CSV paths, folder listings, timeouts
that are not positive, the table) is tested without a kernel.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import nbformat
import pytest

from ganlab import cli
from ganlab.grading import guard
from ganlab.grading.build import find_exercises
from ganlab.grading.grade import (
    GradingError,
    check_csv_path,
    find_submissions,
    format_table,
    grade_path,
    review_flags,
)

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "import torch\nimport torch.nn.functional as F"
LOOP = (
    "import time\n"
    "while True:  # stops for nothing but a kill\n"
    "    try:\n"
    "        time.sleep(1)\n"
    "    except KeyboardInterrupt:\n"
    "        pass"
)
FORGE = (
    "import ganlab.grading\n"
    "import ganlab.grading.registry as registry\n"
    "def fake_check(chapter, exercise_id, namespace):\n"
    "    print(registry.get_exercise(chapter, exercise_id).passed_line())\n"
    "ganlab.grading.check = fake_check"
)
UNANSWERED = (
    "def generator_loss(fake_logits):\n"
    "    raise NotImplementedError('Exercise 3: write your answer here')"
)


def exercise_3_cells():
    """Chapter 1's exercise 3 (the generator loss): its answer cell and its check cell."""
    solution = nbformat.read(ROOT / "solutions" / "01_cgan.ipynb", as_version=4)
    found, _ = find_exercises(solution)
    ex3 = next(f for f in found if f.key == "cgan/3")
    return solution.cells[ex3.answer_cells[0]], solution.cells[ex3.check_cell]


def notebook(*cells):
    cells = [nbformat.v4.new_code_cell(c) if isinstance(c, str) else c for c in cells]
    for i, cell in enumerate(cells):
        cell["id"] = f"cell-{i}"
    return nbformat.v4.new_notebook(cells=cells, metadata={"ganlab": {"chapter": "cgan"}})


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade the four-submission folder once: (folder, results by name, files before, scratch)."""
    folder = tmp_path_factory.mktemp("submissions")
    scratch = tmp_path_factory.mktemp("scratch")
    answer, check = exercise_3_cells()
    overwrite = (
        "import os\n"
        f"os.makedirs({str(scratch)!r}, exist_ok=True)\n"
        f"open(os.path.join({str(scratch)!r}, 'pid'), 'w').write(str(os.getpid()))\n"
        "for name in os.listdir('.'):  # the run's own folder: only its own copy\n"
        "    open(name, 'w').write('{}')\n"
        "for name in ('b_classmate.ipynb', 'c_forger.ipynb'):  # and by absolute path\n"
        f"    open(os.path.join({str(folder)!r}, name), 'w').write('{{}}')"
    )
    nbformat.write(notebook(IMPORTS, overwrite, LOOP, answer, check), folder / "a_attacker.ipynb")
    nbformat.write(notebook(IMPORTS, answer, check), folder / "b_classmate.ipynb")
    nbformat.write(notebook(IMPORTS, UNANSWERED, FORGE, check), folder / "c_forger.ipynb")
    keep = "import ganlab.grading\noriginal = ganlab.grading.check"
    restore = "ganlab.grading.check = original  # no trace left"
    nbformat.write(
        notebook(IMPORTS, UNANSWERED, keep, FORGE, check, restore), folder / "d_restorer.ipynb"
    )
    before = sorted(p.name for p in folder.iterdir())
    results = grade_path(folder, timeout=4)
    return folder, {Path(r["notebook"]).stem: r for r in results}, before, scratch


def test_an_endless_cell_is_killed_named_and_the_folder_goes_on(graded):
    _, results, _, scratch = graded
    attacker = results["a_attacker"]
    assert attacker["score"] == 0
    assert "cell 2 (`import time`) ran past 4 s" in attacker["run_error"]
    assert "a_attacker.ipynb" in attacker["timeouts"][-1]
    assert "did not stop" in attacker["timeouts"][-1]
    # The kernel (and its process group) is gone.
    pid = int((scratch / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert set(results) == {"a_attacker", "b_classmate", "c_forger", "d_restorer"}


def test_a_submission_cannot_destroy_a_classmates_grade(graded):
    folder, results, before, _ = graded
    classmate = results["b_classmate"]
    assert classmate["score"] == 1 and classmate["tampered"] == []  # exercise 3: 1 point
    assert {e["id"]: e["status"] for e in classmate["exercises"]}["3"] == "passed"
    # The attacker's relative writes hit its own temporary copy; nothing new in the folder.
    assert sorted(p.name for p in folder.iterdir()) == before
    assert "b_classmate.ipynb, c_forger.ipynb changed on disk" in results["a_attacker"]["warning"]


def test_replacing_the_check_function_is_detected(graded):
    _, results, _, _ = graded
    forger = results["c_forger"]
    assert forger["score"] == 0
    assert "ganlab.grading.check was replaced" in forger["tampered"]
    assert {e["status"] for e in forger["exercises"]} == {"tampered"}
    assert any("imports the grading machinery" in flag for flag in forger["review"])
    assert "TAMPERED: ganlab.grading.check was replaced" in format_table([forger])


def test_a_forgery_undone_before_the_end_still_scores_nothing(graded):
    _, results, _, _ = graded
    restorer = results["d_restorer"]
    assert restorer["tampered"] == []  # nothing left to see at the end...
    ex3 = {e["id"]: e for e in restorer["exercises"]}["3"]
    # ...but the grader's own re-check of the answer is what scores.
    assert ex3["status"] == "error" and ex3["points"] == 0
    assert "the check cell printed a pass" in ex3["message"]
    assert "says not_implemented" in ex3["message"]


# --- the snapshot, in this process --------------------------------------------------------


@pytest.mark.parametrize(
    "target, name, finding",
    [
        ("ganlab.grading", "check", "ganlab.grading.check was replaced"),
        ("ganlab.grading.checks.cgan", "_require_close", "cgan._require_close was replaced"),
        ("torch", "allclose", "torch.allclose was replaced"),
        ("builtins", "round", "builtins.round was replaced"),
    ],
)
def test_tampering_names_what_was_replaced(monkeypatch, target, name, finding):
    nonce = secrets.token_hex(8)
    import ganlab

    guard.arm(nonce, ganlab.__file__)
    snapshot = guard._SNAPSHOTS.pop(nonce)
    assert guard.tampering(snapshot) == []
    monkeypatch.setattr(f"{target}.{name}", lambda *a, **k: True)
    assert any(finding in line for line in guard.tampering(snapshot))


def test_replacing_a_checks_code_is_detected(monkeypatch):
    import ganlab
    from ganlab.grading import get_exercise

    nonce = secrets.token_hex(8)
    guard.arm(nonce, ganlab.__file__)
    snapshot = guard._SNAPSHOTS.pop(nonce)
    check = get_exercise("cgan", "3").check
    monkeypatch.setattr(check, "__code__", (lambda generator_loss: None).__code__)
    assert "the code of exercise cgan/3's check was replaced" in guard.tampering(snapshot)


def test_the_recheck_uses_the_original_check():
    import ganlab

    nonce = secrets.token_hex(8)
    guard.arm(nonce, ganlab.__file__)
    try:
        answer, _ = exercise_3_cells()
        namespace: dict = {}
        exec(IMPORTS + "\n" + answer.source, namespace)
        report = guard.report(nonce, "cgan", namespace)
    finally:
        guard._SNAPSHOTS.pop(nonce)
    data = json.loads(report)
    assert data["nonce"] == nonce and data["tampered"] == []
    assert data["checks"]["3"] == {"status": "passed", "message": ""}
    assert data["checks"]["1"]["status"] == "failed"  # condition_on_label is not defined


def test_review_flags_cells_that_reach_into_the_grader():
    nb = notebook(IMPORTS, FORGE, "torch.allclose = lambda *a, **k: True", "x = 1")
    flags = review_flags(nb)
    assert any(f.startswith("cell 1 imports the grading machinery") for f in flags)
    assert any(f.startswith("cell 2 replaces torch code") for f in flags)
    assert not any(f.startswith(("cell 0", "cell 3")) for f in flags)


# --- time limits, CSV paths, folders: no kernel needed ------------------------------------


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "ten"])
def test_a_timeout_must_be_a_positive_number_of_seconds(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as info:
        cli.main(["grade", str(tmp_path), "--timeout", value])
    assert info.value.code == 2
    assert "positive whole number of seconds" in capsys.readouterr().err
    with pytest.raises(ValueError, match="positive whole number"):
        grade_path(tmp_path, timeout=0)


def test_csv_paths_are_checked_before_grading(tmp_path):
    with pytest.raises(GradingError, match="is a folder"):
        check_csv_path(tmp_path)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    with pytest.raises(GradingError, match="cannot create files in"):
        check_csv_path(a_file / "grades.csv")
    assert check_csv_path(tmp_path / "new" / "grades.csv") == tmp_path / "new" / "grades.csv"
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "x.ipynb")
    with pytest.raises(GradingError, match="is a folder"):
        grade_path(tmp_path, csv=tmp_path)  # refused before any notebook runs


def test_the_table_is_printed_even_when_the_csv_cannot_be_written(tmp_path, monkeypatch, capsys):
    folder = tmp_path / "submissions"
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), folder / "not_an_assignment.ipynb")

    def fail(results, path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("ganlab.grading.grade.write_csv", fail)
    assert cli.main(["grade", str(folder), "--csv", str(tmp_path / "grades.csv")]) == 1
    out, err = capsys.readouterr()
    assert "not_an_assignment.ipynb  [not graded]" in out
    assert "could not write" in err and "every grade is in the table above" in err


def test_a_folder_says_what_it_skipped_and_why(tmp_path, capsys):
    (tmp_path / "late").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "late" / "dave.ipynb")
    (tmp_path / ".ipynb_checkpoints").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "CAROL.IPYNB")
    notebooks, skipped = find_submissions(tmp_path)
    assert [p.name for p in notebooks] == ["CAROL.IPYNB"]
    assert ".ipynb_checkpoints/: Jupyter's autosaves" in skipped
    assert "late/: a subfolder (1 notebook(s) inside; grade it on its own)" in skipped
    assert "1 file(s) not ending .ipynb: notes.txt" in skipped
    assert cli.main(["grade", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CAROL.IPYNB  [not graded]" in out and "not a GAN Lab assignment" in out
    assert "skipped late/: a subfolder" in out


def test_an_empty_folder_is_an_error_not_silence(tmp_path, capsys):
    assert cli.main(["grade", str(tmp_path)]) == 2
    assert "no notebooks to grade" in capsys.readouterr().err
    with pytest.raises(GradingError, match="the folder is empty"):
        grade_path(tmp_path)


def test_notebooks_that_are_not_assignments_stay_out_of_the_mean():
    def row(name, chapter, score, max_score):
        return {
            "notebook": name,
            "chapter": chapter,
            "score": score,
            "max_score": max_score,
            "exercises": [],
            "errors": [],
        }

    table = format_table([row("a", "cgan", 10, 10), row("b", "cgan", 4, 10), row("c", None, 0, 0)])
    assert "cgan: 2 notebook(s) graded, mean score 7.00/10" in table
    assert "1 notebook(s) not graded (not in the mean)" in table


def test_torchs_own_wrapper_of_manual_seed_is_not_tampering(monkeypatch):
    import functools

    import torch

    import ganlab

    nonce = secrets.token_hex(8)
    guard.arm(nonce, ganlab.__file__)
    snapshot = guard._SNAPSHOTS.pop(nonce)
    original = torch.manual_seed
    # What importing torch._dynamo does: replace manual_seed by a wrapper of it.
    monkeypatch.setattr("torch.manual_seed", functools.wraps(original)(lambda s: original(s)))
    assert guard.tampering(snapshot) == []
    monkeypatch.setattr("torch.allclose", functools.wraps(torch.allclose)(lambda *a, **k: True))
    assert guard.tampering(snapshot) == ["torch.allclose was replaced"]


@pytest.mark.parametrize("folder", ["solutions", "exercises"])
def test_the_courses_own_notebooks_raise_no_review_flags(folder):
    from ganlab.grading.grade import prepare_for_grading

    for path in sorted((ROOT / folder).glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        prepare_for_grading(nb)
        assert review_flags(nb) == [], path.name
