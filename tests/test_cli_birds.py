"""`ganlab` on the birds world: chapter 2's commands and `ganlab world birds`."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from ganlab.cli import main
from ganlab.train import checkpoint as ckpt


def test_gan_int_cls_train_sample_evaluate_bench_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "4", "--out", str(out)]
    assert main([*args, "--variant", "gan-cls"]) == 0
    meta = ckpt.read_meta(out / "generator.safetensors")
    assert meta["chapter"] == "gan-int-cls" and meta["config"]["variant"] == "gan-cls"
    weights = str(out / "generator.safetensors")
    png = tmp_path / "s.png"
    cap = ["sample", "gan-int-cls", "--weights", weights, "--out", str(png), "--n", "3"]
    assert main([*cap, "--caption", "a red bird", "--caption", "a bird with blue wings"]) == 0
    assert Image.open(png).size == (3 * 18 + 2, 2 * 18 + 2)  # 16 px images, 2 px padding
    assert main([*cap, "--caption", ""]) == 2
    assert "has no words" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", "gan-int-cls", "--weights", weights, "--n", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    for split in ("test", "zeroshot"):
        r = result[split]
        assert r["n"] == 100 and {"value", "n_named", "chance", "real"} <= set(r["text_alignment"])
        assert r["frechet_distance"]["n"] == {"generated": 100, "real": 100}
    assert main(["bench", "gan-int-cls", "--profile", "smoke", "--steps", "2", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["chapter"] == "gan-int-cls" and bench["images_per_second"] > 0
    assert main(["train", "gan-int-cls", "--profile", "smoke", "--variant", "gan-int-bls"]) == 2
    assert "variant must be one of" in capsys.readouterr().err


def test_world_birds_grid(tmp_path):
    png = tmp_path / "birds.png"
    assert main(["world", "birds", "--n", "4", "--size", "32", "--out", str(png)]) == 0
    assert Image.open(png).size[0] > 200
    plain = tmp_path / "plain.png"
    argv = ["world", "birds", "--n", "4", "--size", "32", "--framing", "tight", "--scene", "plain"]
    assert main([*argv, "--out", str(plain)]) == 0
    assert Image.open(plain).size == Image.open(png).size
    with pytest.raises(SystemExit):  # argparse names the choices
        main(["world", "birds", "--scene", "empty"])


@pytest.mark.filterwarnings("ignore:feats_a has n")
def test_gan_int_cls_trains_and_is_measured_on_a_simpler_world(tmp_path, capsys):
    """``--framing tight --scene plain`` (the birds study's finding): the run records the
    world it trained on, and ``evaluate`` measures it against real birds of that world."""
    out = tmp_path / "plain"
    args = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "2", "--out", str(out)]
    assert main([*args, "--framing", "tight", "--scene", "plain"]) == 0
    meta = ckpt.read_meta(out / "generator.safetensors")
    assert meta["config"]["framing"] == "tight" and meta["config"]["scene"] == "plain"
    capsys.readouterr()
    assert main(["evaluate", "gan-int-cls", "--weights", str(out / "generator.safetensors"),
                 "--n", "100"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["test"]["world"] == {"framing": "tight", "scene": "plain"}
    with pytest.raises(ValueError, match="birds world's options"):
        from ganlab.data.captioned import load_captioned

        load_captioned(4, root=tmp_path, scene="plain")
