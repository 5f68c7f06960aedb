"""The worlds' drawing benchmark (``ganlab world WORLD --bench``): what it reports.

How fast a machine draws is measured by the benchmark, never asserted here: a shared CI
machine's clock is not the drawing's cost.
"""

import json

import pytest

from ganlab.cli import main
from ganlab.data.drawing_cost import WORLDS, drawing_cost


@pytest.mark.parametrize("world", WORLDS)
def test_the_report_holds_each_round_and_the_best_of_them(world):
    report = drawing_cost(world, size=32, n=3, rounds=2)
    assert (report["world"], report["size"], report["n"]) == (world, 32, 3)
    assert len(report["rounds_ms"]) == 2 and all(t > 0 for t in report["rounds_ms"])
    assert report["ms_per_image"] == min(report["rounds_ms"])
    assert report["seconds_per_10000"] == pytest.approx(report["ms_per_image"] * 10, abs=0.06)
    assert report["images_per_s"] == pytest.approx(1000 / report["ms_per_image"], rel=1e-2)


def test_the_command_prints_the_report_as_json(capsys):
    assert main(["world", "birds", "--bench", "--n", "2", "--size", "32"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["world"] == "birds" and report["size"] == 32 and report["n"] == 2


def test_bad_arguments_name_what_was_expected():
    with pytest.raises(ValueError, match="unknown world 'fish'"):
        drawing_cost("fish")
    with pytest.raises(ValueError, match="n and rounds must be ints >= 1"):
        drawing_cost("birds", n=0)
    with pytest.raises(ValueError, match="size must be an int"):
        drawing_cost("faces", size=2)
