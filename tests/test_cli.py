"""The `ganlab` command: names and JSON keys that teachers' scripts rely on."""

import json
import subprocess
import sys

import pytest

from ganlab.cli import main
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import cpu_has_bf16

BENCH_KEYS = {"chapter", "profile", "device", "batch_size", "steps", "seconds", "images_per_second"}


def test_train_sample_resume_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "cgan", "--profile", "smoke", "--steps", "6", "--out", str(out)]) == 0
    assert ckpt.read_meta(out / "checkpoint.safetensors")["step"] == 6
    gen_meta = ckpt.read_meta(out / "generator.safetensors")
    assert gen_meta["model"] == "cgan.ConvGenerator" and gen_meta["manifest"]["steps"] == 6
    args = ["train", "cgan", "--profile", "smoke", "--steps", "9", "--out", str(out), "--resume"]
    assert main(args) == 0
    assert "resumed" in capsys.readouterr().out
    assert ckpt.read_meta(out / "checkpoint.safetensors")["step"] == 9

    png = tmp_path / "grid.png"
    weights = str(out / "generator.safetensors")
    assert main(["sample", "cgan", "--weights", weights, "--out", str(png), "--n", "3"]) == 0
    from PIL import Image

    assert Image.open(png).size == (3 * 30 + 2, 10 * 30 + 2)
    args = ["sample", "cgan", "--weights", weights, "--out", str(png), "--digit", "4", "--n", "5"]
    assert main(args) == 0
    assert main(["sample", "cgan", "--weights", weights, "--digit", "11"]) == 2
    assert "0..9" in capsys.readouterr().err


def test_bad_weights_give_clear_errors(tmp_path, capsys):
    assert main(["sample", "cgan", "--weights", str(tmp_path / "none.safetensors")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{}")
    assert main(["sample", "cgan", "--weights", str(broken)]) == 2
    assert "truncated or corrupt" in capsys.readouterr().err


def test_unwritten_and_unknown_chapters(capsys):
    from ganlab.chapters import PLAN

    unwritten = [c.name for c in PLAN if c.module is None]
    if unwritten:
        assert main(["train", unwritten[0], "--profile", "smoke"]) == 2
        assert "not written yet" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "dcgan"])


def test_bench_json_keys(capsys):
    assert main(["bench", "cgan", "--profile", "smoke", "--steps", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert BENCH_KEYS <= set(result)
    assert result["chapter"] == "cgan" and result["images_per_second"] > 0
    assert result["amp_bf16"] is False  # the CPU runs float32 unless asked


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no native bf16")
def test_cpu_bf16_reaches_the_run_and_its_manifest(tmp_path, capsys):
    bench = ["bench", "cgan", "--profile", "smoke", "--steps", "2", "--json", "--cpu-bf16"]
    assert main(bench) == 0
    assert json.loads(capsys.readouterr().out)["amp_bf16"] is True
    out = tmp_path / "run"
    assert main(["train", "cgan", "--profile", "smoke", "--steps", "2", "--cpu-bf16",
                 "--out", str(out)]) == 0  # fmt: skip
    meta = ckpt.load_state(out / "generator.safetensors")[1]
    assert "--cpu-bf16" in meta["manifest"]["command"]


def test_python_dash_m_and_info():
    proc = subprocess.run(
        [sys.executable, "-m", "ganlab", "info"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "ganlab profile: smoke" in proc.stdout and "device: cpu" in proc.stdout


def test_evaluate_json_has_sample_sizes_and_baselines(capsys):
    assert main(["evaluate", "cgan", "--n", "200", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    m = result["metrics"]
    assert m["conditional_accuracy"]["n"] == 200 and m["conditional_accuracy"]["chance"] == 0.1
    for key in ("frechet_distance", "kid"):
        assert m[key]["n_generated"] == 200 and m[key]["n_real"] == 1000
        assert "real_vs_real" in m[key]
    # the real-vs-real baseline uses as many real digits as were generated (the Frechet
    # distance is biased by sample size, so only equal sizes compare)
    assert m["frechet_distance"]["n_real_reference"] == 200
    assert m["frechet_distance"]["value"] > 0 and m["kid"]["std"] >= 0
    assert {"value", "sigma", "real_baseline", "n_test"} <= set(m["parzen_log_likelihood"])


@pytest.mark.parametrize(
    "argv, own",
    [
        (["train", "stackgan"], ["--stage {1,2}", "--refine-sketch", "--code-size M"]),
        (["ship", "gan-int-cls"], ["--main", "--comparison"]),
        (["sample", "cgan"], ["--digit DIGIT"]),
    ],
)
def test_help_lists_the_chapters_own_options(argv, own, capsys):
    """``ganlab COMMAND CHAPTER --help`` shows the command's options, then the chapter's."""
    with pytest.raises(SystemExit) as done:
        main([*argv, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    head, _, tail = text.partition(f"{argv[1]}'s own {argv[0]} options:")
    assert "--profile" in head or "--weights" in head or "--n N" in head
    assert all(option in tail for option in own), tail
