"""``python -m ganlab.experiments.caption_runs``: a run's FD parts and diversity per snapshot."""

from __future__ import annotations

import json

import pytest

from ganlab.cli import main as ganlab
from ganlab.experiments import caption_runs


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "attn"
    args = ["train", "attngan", "--profile", "smoke", "--steps", "2", "--snapshot-every", "1"]
    assert ganlab([*args, "--out", str(out)]) == 0
    return out


def test_rows_split_the_selection_fd_into_its_parts(run, tmp_path, capsys):
    """One row per asked snapshot; its FD is ship --pick-snapshot's score, and the parts add
    up to it; diversity is measured as the manifests do, beside real birds."""
    out = tmp_path / "rows.json"
    argv = ["attngan", str(run), "--steps", "1", "--n", "8", "--captions", "3"]
    assert caption_runs.main([*argv, "--per-caption", "2", "--json", str(out)]) == 0
    table = json.loads(out.read_text())
    (row,) = table["rows"]
    assert row["steps"] == 1 and row["n"] == 8
    assert row["fd"] == pytest.approx(row["fd_mean"] + row["fd_covariance"], rel=1e-9)
    assert row["fd_mean"] >= 0 and row["diversity"] > 0 and row["diversity_pixels"] > 0
    assert table["real"]["judge_features"] > 0
    printed = capsys.readouterr().out
    assert "real birds: diversity" in printed and "n = 8 train-split captions" in printed


def test_bad_arguments_are_refused_by_name(run, tmp_path, capsys):
    assert caption_runs.main(["attngan", str(run), "--steps", "7"]) == 2
    assert "no snapshot at step(s) [7]" in capsys.readouterr().err
    assert caption_runs.main(["attngan", str(tmp_path)]) == 2
    assert "has no snapshots/" in capsys.readouterr().err
    assert caption_runs.main(["attngan", str(run), "--n", "1"]) == 2
    assert "--n" in capsys.readouterr().err
    assert caption_runs.main(["pix2pix", str(run)]) == 2
