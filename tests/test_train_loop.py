"""The one training loop: determinism, exact resume, NaN guard, atomic checkpoints, DDP."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ganlab.chapters.cgan import CGANRecipe
from ganlab.errors import CheckpointError, NonFiniteLossError
from ganlab.train import checkpoint as ckpt
from ganlab.train import loop
from ganlab.train.loop import StepContext, TrainConfig, Trainer


def tiny(out=None, steps=12, **kw):
    recipe = CGANRecipe(arch="conv", width=4, z_dim=8)
    cfg = TrainConfig(
        steps=steps, batch_size=8, log_every=3, checkpoint_every=6, out=out, progress=False, **kw
    )
    return Trainer(recipe, cfg, device="cpu")


def weights(trainer):
    tensors, _ = trainer.state_tensors()
    return tensors


def test_same_seed_same_weights_different_seed_differs():
    a, b, c = tiny(), tiny(), tiny(seed=1)
    for t in (a, b, c):
        t.fit()
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert any(not torch.equal(wa[k], wc[k]) for k in wa if k.startswith("G."))


def test_interrupted_run_resumes_to_identical_weights(tmp_path):
    straight = tiny(out=str(tmp_path / "a"))
    straight.fit()

    class Crash(RuntimeError):
        pass

    def crash_at_8(trainer):
        if trainer.step == 8:  # after the checkpoint at step 6, before the one at 12
            raise Crash

    broken = tiny(out=str(tmp_path / "b"))
    with pytest.raises(Crash):
        broken.fit(callback=crash_at_8)
    assert ckpt.read_meta(tmp_path / "b" / "checkpoint.safetensors")["step"] == 6

    resumed = tiny(out=str(tmp_path / "b"), resume=True)
    resumed.fit()
    assert resumed.step == 12
    wa, wr = weights(straight), weights(resumed)
    assert wa.keys() == wr.keys()
    for k in wa:
        assert torch.equal(wa[k], wr[k]), f"{k} differs after resume"
    assert [h["step"] for h in resumed.history] == [h["step"] for h in straight.history]


def test_nan_loss_stops_with_clear_message_and_keeps_last_good_checkpoint(tmp_path):
    trainer = tiny(out=str(tmp_path), steps=12)

    def poison(t):
        if t.step == 7:  # weights become NaN after the checkpoint at step 6
            with torch.no_grad():
                for p in t.raw["D"].parameters():
                    p.fill_(float("nan"))

    with pytest.raises(NonFiniteLossError, match="NaN/inf") as err:
        trainer.fit(callback=poison)
    assert "checkpoint" in str(err.value)
    path = tmp_path / "checkpoint.safetensors"
    tensors, meta = ckpt.load_state(path)
    assert meta["step"] == 6
    assert all(torch.isfinite(v).all() for v in tensors.values() if v.is_floating_point())


def test_failed_save_keeps_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "w.safetensors"
    ckpt.save_state(path, {"a": torch.ones(3)}, {"model": "x"})
    good = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save_state(path, {"a": torch.zeros(3)}, {"model": "x"})
    assert path.read_bytes() == good
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_checkpoint_of_another_config_or_truncated_file_is_rejected(tmp_path):
    trainer = tiny(out=str(tmp_path), steps=6)
    trainer.fit()
    path = tmp_path / "checkpoint.safetensors"
    other = Trainer(
        CGANRecipe(arch="conv", width=8, z_dim=8),
        TrainConfig(steps=6, batch_size=8, out=str(tmp_path), resume=True, progress=False),
        device="cpu",
    )
    with pytest.raises(CheckpointError, match="width"):
        other.fit()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        ckpt.load_state(cut)
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_state(tmp_path / "missing.safetensors")
    plain = tmp_path / "plain.safetensors"
    from safetensors.torch import save_file

    save_file({"x": torch.ones(1)}, str(plain))
    with pytest.raises(CheckpointError, match="not written by ganlab"):
        ckpt.load_state(plain)


def test_ema_tracks_generator():
    t = tiny(steps=3, ema_decay=0.5)
    t.fit()
    g = dict(t.raw["G"].named_parameters())
    e = dict(t.ema["G"].module.named_parameters())
    assert all(not torch.equal(g[k], e[k]) for k in g if g[k].numel() > 1)
    assert t.generator() is t.ema["G"].module


def test_config_validation():
    with pytest.raises(ValueError, match="steps"):
        TrainConfig(steps=0)


def _context(amp: bool, cpu_bf16: bool) -> StepContext:
    return StepContext(0, 8, torch.device("cpu"), {}, {}, {}, None, amp, 1, cpu_bf16)


def test_cpu_bf16_autocasts_the_cpu_only_when_asked():
    conv, x = torch.nn.Conv2d(3, 4, 3), torch.randn(2, 3, 8, 8)
    for amp, cpu_bf16, dtype in ((True, True, torch.bfloat16), (True, False, torch.float32),
                                 (False, True, torch.float32)):  # fmt: skip
        ctx = _context(amp, cpu_bf16)
        with ctx.autocast():
            assert conv(x).dtype == dtype, (amp, cpu_bf16)
            with ctx.full_precision():
                assert conv(x).dtype == torch.float32


def test_cpu_bf16_is_refused_where_the_cpu_would_emulate_it(monkeypatch):
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: False)
    with pytest.raises(ValueError, match="native bf16"):
        TrainConfig(cpu_bf16=True)
    TrainConfig(cpu_bf16=False)  # the default never asks


@pytest.mark.skipif(not loop.cpu_has_bf16(), reason="this CPU has no native bf16")
def test_a_cpu_bf16_run_trains_finite_and_differs_from_float32():
    a, b = tiny(steps=4, cpu_bf16=True), tiny(steps=4)
    for t in (a, b):
        t.fit()
    assert all(torch.isfinite(torch.tensor(v)) for v in a.history[-1].values())
    wa, wb = weights(a), weights(b)
    assert all(v.dtype == torch.float32 for k, v in wa.items() if v.is_floating_point())
    assert any(not torch.equal(wa[k], wb[k]) for k in wa if k.startswith("G."))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_SCRIPT = r"""
import json, os, sys, torch
torch.set_num_threads(1)
from ganlab.chapters.cgan import CGANRecipe
from ganlab.train.loop import TrainConfig, Trainer
recipe = CGANRecipe(arch="conv", width=4, z_dim=8)
cfg = TrainConfig(steps=4, batch_size=8, log_every=2, checkpoint_every=4, out=sys.argv[1],
                  progress=False)
t = Trainer(recipe, cfg, device="cpu")
t.fit()
g = torch.cat([p.detach().flatten() for p in t.raw["G"].parameters()])
out = {"rank": t.dist.rank, "world": t.dist.world_size, "sum": g.double().sum().item(),
       "first": g[:5].tolist()}
json.dump(out, open(os.path.join(sys.argv[1], f"rank{t.dist.rank}.json"), "w"))
"""


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_gloo(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_addr=127.0.0.1",
        f"--master_port={_free_port()}",
        str(script),
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0 = json.loads((tmp_path / "rank0.json").read_text())
    r1 = json.loads((tmp_path / "rank1.json").read_text())
    assert r0["world"] == r1["world"] == 2
    # gradients are averaged across processes, so both replicas hold the same weights
    assert r0["first"] == pytest.approx(r1["first"], abs=1e-6)
    assert r0["sum"] == pytest.approx(r1["sum"], rel=1e-6)
    # only rank 0 writes the checkpoint
    assert Path(tmp_path / "checkpoint.safetensors").exists()
