"""``ganlab train --snapshot-every N`` and ``ganlab ship --pick-snapshot``: a run keeps its
generator every N steps, and shipping picks the snapshot that scores best on the training
split, never on the test split its shipped numbers come from."""

from argparse import Namespace

import pytest
from safetensors.torch import load_file

from ganlab import weights
from ganlab.chapters import commands, get_chapter
from ganlab.cli import main
from ganlab.evaluation import birds
from ganlab.train import checkpoint as ckpt

CHAPTER = get_chapter("gan-int-cls")


def _train(out, *extra) -> int:
    argv = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "12", "--out", str(out)]
    return main([*argv, *extra])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("snapshots")
    assert _train(root / "with", "--snapshot-every", "5") == 0
    assert _train(root / "without") == 0
    return root / "with", root / "without"


def test_snapshots_are_written_every_n_steps_and_load(runs):
    run, _ = runs
    found = commands.snapshots(run)
    assert [p.name for p in found] == [
        "generator_step000005.safetensors",
        "generator_step000010.safetensors",
    ]  # the last step is the run's own generator.safetensors
    for path, steps in zip(found, (5, 10)):
        G, meta = CHAPTER.load(path)
        assert meta["kind"] == "weights" and meta["manifest"]["steps"] == steps
        assert "--snapshot-every 5" in meta["manifest"]["command"]
        assert meta["manifest"]["batchnorm"].startswith("standing statistics")
    last = load_file(found[-1])
    final = load_file(run / "generator.safetensors")
    assert any(not last[k].equal(final[k]) for k in final)  # two steps later: not the same G


def test_snapshots_leave_the_training_untouched(runs):
    """Exporting a snapshot mid-run draws nothing from the training's random streams."""
    a, b = (load_file(run / "checkpoint.safetensors") for run in runs)
    assert a.keys() == b.keys()
    assert all(a[k].equal(b[k]) for k in a)


def test_pick_snapshot_takes_the_lowest_training_split_score(runs, monkeypatch):
    run, _ = runs
    scores = {5: 30.0, 10: 10.0, 12: 20.0}

    def score(G, meta, n):
        return {"frechet_distance": scores[meta["manifest"]["steps"]], "split": "train", "n": n}

    monkeypatch.setattr(CHAPTER, "selection_score", score)
    path, record = commands.pick_snapshot(CHAPTER, run, 50)
    assert path.name == "generator_step000010.safetensors"
    assert record["picked_steps"] == 10 and record["split"] == "train" and record["n"] == 50
    assert [c["steps"] for c in record["candidates"]] == [5, 10, 12]
    assert [c["frechet_distance"] for c in record["candidates"]] == [30.0, 10.0, 20.0]


def test_ship_records_the_choice_in_the_manifest(runs, monkeypatch, tmp_path):
    run, _ = runs
    monkeypatch.setattr(weights, "HERE", tmp_path)
    monkeypatch.setattr(weights, "write_index", lambda: None)
    monkeypatch.setattr(
        CHAPTER,
        "selection_score",
        lambda G, meta, n: {"frechet_distance": -meta["manifest"]["steps"], "split": "train"},
    )
    monkeypatch.setattr(CHAPTER, "ship_measure", lambda G, meta, n: ({"fd": 1.0}, {}))
    args = Namespace(run=str(run), n=10, pick_snapshot=True, select_n=20, main=True)
    commands.ship(CHAPTER, args)
    doc = ckpt.read_meta(tmp_path / "gan_int_cls.safetensors")["manifest"]
    assert doc["steps"] == 12 and doc["selection"]["picked_steps"] == 12  # the last scored best
    assert doc["metrics"] == {"fd": 1.0} and doc["n_eval"] == 10


def test_a_run_stopped_early_is_picked_from_its_snapshots(runs, monkeypatch, tmp_path):
    """A run interrupted before its last step has no generator.safetensors: its snapshots
    are the candidates."""
    import shutil

    run, _ = runs
    stopped = tmp_path / "stopped"
    shutil.copytree(run / commands.SNAPSHOTS, stopped / commands.SNAPSHOTS)
    monkeypatch.setattr(
        CHAPTER,
        "selection_score",
        lambda G, meta, n: {"frechet_distance": float(meta["manifest"]["steps"]), "split": "train"},
    )
    path, record = commands.pick_snapshot(CHAPTER, stopped, 50)
    assert [c["steps"] for c in record["candidates"]] == [5, 10]
    assert record["picked_steps"] == 5 and path.name == "generator_step000005.safetensors"


def test_reused_scores_are_taken_only_for_the_same_file_and_n(runs, monkeypatch, tmp_path):
    """Every score lands in snapshots/scores.json; ``reuse`` takes it back for a file whose
    SHA-256, n and chapter match, and measures anything else again."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(runs[0], run)
    calls = []

    def score(G, meta, n):
        calls.append(meta["manifest"]["steps"])
        return {"frechet_distance": float(meta["manifest"]["steps"]), "split": "train"}

    monkeypatch.setattr(CHAPTER, "selection_score", score)
    first = commands.pick_snapshot(CHAPTER, run, 50)[1]
    assert calls == [5, 10, 12]
    assert commands.pick_snapshot(CHAPTER, run, 50, reuse=True)[1] == first
    assert calls == [5, 10, 12]  # nothing measured again
    commands.pick_snapshot(CHAPTER, run, 40, reuse=True)  # another n: all measured again
    assert calls == [5, 10, 12] * 2
    shutil.copy(run / "generator.safetensors", commands.snapshots(run)[0])  # a changed file
    calls.clear()
    commands.pick_snapshot(CHAPTER, run, 40, reuse=True)
    assert calls == [12]  # only the replaced snapshot (it now holds step 12)
    commands.pick_snapshot(CHAPTER, run, 40)  # without reuse: every file measured
    assert calls == [12, 12, 10, 12]
    (run / commands.SNAPSHOTS / commands.SCORES).write_text("not json")
    calls.clear()
    commands.pick_snapshot(CHAPTER, run, 40, reuse=True)  # unreadable: measured again
    assert calls == [12, 10, 12]


def test_pick_snapshot_needs_snapshots(runs):
    _, without = runs
    with pytest.raises(ValueError, match="--snapshot-every"):
        commands.pick_snapshot(CHAPTER, without, 50)


def test_snapshot_every_must_be_positive(tmp_path, capsys):
    assert _train(tmp_path / "run", "--snapshot-every", "0") == 2
    assert "--snapshot-every must be a positive integer, got 0" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()  # refused before any training


def test_a_chapter_without_a_score_says_so():
    with pytest.raises(ValueError, match="--pick-snapshot is not supported"):
        get_chapter("cgan").selection_score(None, {}, 10)


@pytest.mark.filterwarnings("ignore:feats_a has n")
def test_selection_fd_reads_the_training_split(monkeypatch):
    """The choice is scored on the training split's birds: the test split is never loaded."""
    seen = []
    real = birds.eval_captions

    def spy(split, n, *a, **k):
        seen.append(split)
        return real(split, n, *a, **k)

    monkeypatch.setattr(birds, "eval_captions", spy)
    ref = birds.real_birds(40, "train", framing="tight", scene="plain")
    out = birds.selection_fd(
        lambda captions, seed: ref[: len(captions)], 40, framing="tight", scene="plain"
    )
    assert seen == ["train"] and out["split"] == "train" and out["n"] == 40
    assert out["frechet_distance"] == pytest.approx(0.0, abs=1e-3)  # the birds themselves


def test_a_checkpoint_loads_with_standing_statistics(runs):
    """A checkpoint's EMA generator carries the raw generator's BatchNorm statistics; loading
    it for sampling or measuring recomputes them, as an export does."""
    from ganlab.train.export import load_generator

    path = runs[0] / "checkpoint.safetensors"
    G, meta = CHAPTER.load(path)
    assert meta["manifest"]["batchnorm"].startswith("standing statistics")
    raw, _ = load_generator(path, "gan-int-cls")  # the EMA weights as stored
    stats = [k for k in raw.state_dict() if k.endswith("running_mean")]
    assert stats
    assert any(not G.state_dict()[k].equal(raw.state_dict()[k]) for k in stats)
    recipe = CHAPTER.recipe_of(meta)
    by_hand = CHAPTER.standing_statistics(raw, recipe, recipe.data("cpu"), "cpu")
    assert all(G.state_dict()[k].equal(by_hand.state_dict()[k]) for k in stats)


@pytest.mark.parametrize(
    "name, overrides",
    [("gan-int-cls", {}), ("stackgan", {"stage": 1}), ("stackgan", {"stage": 2}), ("attngan", {})],
)
def test_a_recipe_is_rebuilt_from_its_recorded_config(name, overrides):
    chapter = get_chapter(name)
    recipe, _ = chapter.recipe("smoke", **overrides)
    rebuilt = chapter.recipe_of({"config": recipe.config()})
    assert type(rebuilt) is type(recipe) and rebuilt.config() == recipe.config()
