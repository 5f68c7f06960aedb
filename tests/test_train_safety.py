"""Training loses nothing: an existing run is not replaced, --out is checked before the first
step, Ctrl-C saves at a step boundary (and resumes bit for bit), checkpoints also come on
time, orphan temporary files are removed, and a NaN/inf state is never saved nor loaded."""

import errno
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from ganlab.chapters.cgan import CGANRecipe
from ganlab.cli import main
from ganlab.errors import CheckpointError, NonFiniteLossError
from ganlab.train import checkpoint as ckpt
from ganlab.train import interrupt, run_dir
from ganlab.train.interrupt import TrainingInterrupted
from ganlab.train.loop import TrainConfig, Trainer
from ganlab.train.run_dir import CheckpointClock, RunExistsError, RunFolderError


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: a second thread only adds waiting (15x the CPU time on a busy machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny(out=None, steps=12, **kw):
    recipe = CGANRecipe(arch="conv", width=4, z_dim=8)
    kw = {"checkpoint_every": 6, **kw}
    cfg = TrainConfig(steps=steps, batch_size=8, log_every=3, out=out, progress=False, **kw)
    return Trainer(recipe, cfg, device="cpu")


def weights(trainer):
    tensors, _ = trainer.state_tensors()
    return tensors


def assert_same_weights(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), f"{k} differs after resume"


# ------------------------------------------------------------------ an existing run
def test_existing_run_is_refused_without_resume_or_overwrite(tmp_path):
    tiny(out=str(tmp_path), steps=6).fit()
    path = tmp_path / "checkpoint.safetensors"
    before = path.read_bytes()
    again = tiny(out=str(tmp_path), steps=6)
    with pytest.raises(RunExistsError, match="--resume") as err:
        again.fit(callback=lambda t: pytest.fail("trained into an existing run"))
    assert "--overwrite" in str(err.value) and "step 6" in str(err.value)
    assert path.read_bytes() == before  # nothing replaced
    with pytest.raises(ValueError, match="give one of them"):
        tiny(out=str(tmp_path), steps=6, resume=True, overwrite=True).fit()
    replaced = tiny(out=str(tmp_path), steps=3, checkpoint_every=3, overwrite=True)
    replaced.fit()
    assert ckpt.read_meta(path)["step"] == 3


def test_cli_refuses_an_existing_run_and_overwrite_replaces_it(tmp_path, capsys):
    out = str(tmp_path / "run")
    args = ["train", "cgan", "--profile", "smoke", "--steps", "2", "--out", out]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds a training run" in err and "--overwrite" in err
    assert main([*args, "--overwrite"]) == 0
    assert main([*args, "--checkpoint-minutes", "-1", "--overwrite"]) == 2
    assert "checkpoint-minutes" in capsys.readouterr().err


# ------------------------------------------------------------------ Ctrl-C
def ctrl_c_at(step, times=1):
    """A callback that presses Ctrl-C (a real SIGINT to this process) after ``step``."""

    def callback(trainer):
        if trainer.step == step:
            for _ in range(times):
                os.kill(os.getpid(), signal.SIGINT)

    return callback


def test_ctrl_c_saves_at_the_step_boundary_and_resumes_bit_identically(tmp_path):
    straight = tiny(out=str(tmp_path / "a"))
    straight.fit()
    handler = signal.getsignal(signal.SIGINT)

    broken = tiny(out=str(tmp_path / "b"))
    with pytest.raises(TrainingInterrupted) as err:
        broken.fit(callback=ctrl_c_at(5))
    assert isinstance(err.value, KeyboardInterrupt)  # code that catches Ctrl-C still does
    assert err.value.saved and err.value.step == 5 and err.value.resumable
    assert signal.getsignal(signal.SIGINT) is handler  # Python's handler is back
    path = tmp_path / "b" / "checkpoint.safetensors"
    assert ckpt.read_meta(path)["step"] == 5  # not a checkpoint step: saved because of Ctrl-C

    resumed = tiny(out=str(tmp_path / "b"), resume=True)
    resumed.fit()
    assert resumed.step == 12
    assert_same_weights(straight, resumed)
    assert [h["step"] for h in resumed.history] == [h["step"] for h in straight.history]


def test_second_ctrl_c_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    trainer = tiny(out=str(tmp_path))
    with pytest.raises(TrainingInterrupted, match="nothing saved") as err:
        trainer.fit(callback=ctrl_c_at(8, times=2))
    assert not err.value.saved and "step 6" in str(err.value)
    assert ckpt.read_meta(tmp_path / "checkpoint.safetensors")["step"] == 6


def test_cli_ctrl_c_prints_the_resume_command_and_exits_130(tmp_path, capsys, monkeypatch):
    check = interrupt.GracefulStop.check

    def press_at_3(self):
        if self.trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
        check(self)

    monkeypatch.setattr(interrupt.GracefulStop, "check", press_at_3)
    out = str(tmp_path / "run")
    assert main(["train", "cgan", "--profile", "smoke", "--steps", "6", "--out", out]) == 130
    err = capsys.readouterr().err
    want = f"resume with: ganlab train cgan --profile smoke --steps 6 --out {out} --resume"
    assert want in err and "Traceback" not in err
    assert ckpt.read_meta(Path(out) / "checkpoint.safetensors")["step"] == 3
    monkeypatch.setattr(interrupt.GracefulStop, "check", check)
    assert main(want.split()[3:]) == 0  # the printed command, as typed
    assert "resumed from" in capsys.readouterr().out
    assert ckpt.read_meta(Path(out) / "checkpoint.safetensors")["step"] == 6
    assert interrupt.resume_command(["train", "cgan", "--overwrite", "--out", "a b"]) == (
        "ganlab train cgan --out 'a b' --resume"
    )


def test_real_sigint_to_the_command_has_no_traceback(tmp_path):
    """End to end: a SIGINT to a running ``python -m ganlab train``."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GANLAB_PROFILE": "smoke"}
    cmd = [sys.executable, "-m", "ganlab", "train", "cgan", "--steps", "1000000"]
    proc = subprocess.Popen(
        [*cmd, "--out", str(out), "--checkpoint-minutes", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen = b""
    try:
        with selectors.DefaultSelector() as sel:  # tqdm redraws with \r: no lines to read
            sel.register(proc.stderr, selectors.EVENT_READ)
            deadline = time.monotonic() + 120
            while b"train cgan" not in seen and time.monotonic() < deadline:
                if not sel.select(timeout=1):
                    continue
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    break  # the command ended
                seen += chunk
        time.sleep(0.5)  # inside the step loop, a few steps in
        proc.send_signal(signal.SIGINT)
        _, rest = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    stderr = (seen + rest).decode(errors="replace")
    assert proc.returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr and "resume with: ganlab train cgan" in stderr
    step = ckpt.read_meta(out / "checkpoint.safetensors")["step"]
    assert f"interrupted at step {step} of 1000000; checkpoint saved" in stderr


# ------------------------------------------------------------------ checkpoints on time
def test_checkpoint_clock():
    now = [0.0]
    clock = CheckpointClock(10, clock=lambda: now[0])
    now[0] = 599.0
    assert not clock.due()
    now[0] = 600.0
    assert clock.due()
    clock.reset()
    assert not clock.due()
    now[0] = 1e9
    assert not CheckpointClock(0, clock=lambda: now[0]).due()  # 0: off
    with pytest.raises(ValueError, match="minutes"):
        CheckpointClock(-1)


def test_time_based_checkpoints_between_step_checkpoints(tmp_path):
    seen = {}

    def look(trainer):
        if trainer.step == 4:
            path = tmp_path / "b" / "checkpoint.safetensors"
            seen["step"] = ckpt.read_meta(path)["step"] if path.exists() else None

    off = tiny(out=str(tmp_path / "a"), checkpoint_every=12, checkpoint_minutes=0)
    off.fit()
    often = tiny(out=str(tmp_path / "b"), checkpoint_every=12, checkpoint_minutes=1e-9)
    often.fit(callback=look)
    assert seen["step"] == 4  # saved on time, although the step interval is 12
    # a time-based save logs nothing: the history is the regular one
    assert [h["step"] for h in often.history] == [h["step"] for h in off.history]
    assert TrainConfig().checkpoint_minutes == 10.0
    with run_dir.command_line_options(overwrite=True, checkpoint_minutes=2.5):
        cfg = TrainConfig()
    assert cfg.overwrite and cfg.checkpoint_minutes == 2.5
    assert not TrainConfig().overwrite


# ------------------------------------------------------------------ --out checked first
def never(trainer):
    pytest.fail("training started before --out was checked")


def test_odd_or_unwritable_out_fails_before_the_first_step(tmp_path, monkeypatch, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("mine")
    with pytest.raises(RunFolderError, match="is a file"):
        tiny(out=str(a_file)).fit(callback=never)
    with pytest.raises(RunFolderError, match="cannot create"):
        tiny(out=str(a_file / "run")).fit(callback=never)
    with pytest.raises(RunFolderError, match="looks like a file name"):
        tiny(out=str(tmp_path / "run.safetensors")).fit(callback=never)
    assert a_file.read_text() == "mine"

    def read_only(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(run_dir.tempfile, "mkstemp", read_only)
    with pytest.raises(RunFolderError, match="cannot write in the run folder.*Read-only"):
        tiny(out=str(tmp_path / "ro")).fit(callback=never)
    monkeypatch.undo()

    class Full:
        free = 1000

    monkeypatch.setattr(run_dir.shutil, "disk_usage", lambda p: Full)
    with pytest.raises(RunFolderError, match="MiB free"):
        tiny(out=str(tmp_path / "full")).fit(callback=never)
    monkeypatch.undo()
    assert main(["train", "cgan", "--profile", "smoke", "--out", str(a_file)]) == 2
    assert "is a file, but a folder was expected" in capsys.readouterr().err


def test_orphan_tmp_files_are_removed_at_start_and_resume(tmp_path):
    ours = [
        tmp_path / "checkpoint.safetensors.ganlab-k2x_9abc.tmp",
        tmp_path / "checkpoint.json.ganlab-00000000.tmp",
        tmp_path / "generator.safetensors.ab12cd34.tmp",  # older versions' names
    ]
    theirs = [tmp_path / "notes.tmp", tmp_path / "data.ab12cd34.tmp", tmp_path / "x.ganlab-1.tmp"]
    for p in ours + theirs:
        p.write_bytes(b"half a file")
    tiny(out=str(tmp_path), steps=3, checkpoint_every=3).fit()
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs)
    ours[0].write_bytes(b"left by a kill")
    tiny(out=str(tmp_path), steps=6, checkpoint_every=3, resume=True).fit()
    assert not ours[0].exists()


# ------------------------------------------------------------------ NaN/inf
def test_nonfinite_state_is_never_saved_as_the_last_good_checkpoint(tmp_path):
    trainer = tiny(out=str(tmp_path))

    def poison_ema(t):  # the raw weights and losses stay finite: only the EMA copy diverges
        if t.step == 7:
            with torch.no_grad():
                next(t.ema["G"].module.parameters()).fill_(float("inf"))

    with pytest.raises(NonFiniteLossError, match="diverged by step 12") as err:
        trainer.fit(callback=poison_ema)
    assert "ema.G." in str(err.value) and "step 6" in str(err.value)
    path = tmp_path / "checkpoint.safetensors"
    tensors, meta = ckpt.load_state(path)
    assert meta["step"] == 6 and not ckpt.nonfinite_tensors(tensors)


def test_a_nan_checkpoint_is_neither_resumed_nor_sampled(tmp_path, capsys):
    trainer = tiny(out=str(tmp_path), steps=6)
    trainer.fit()
    path = tmp_path / "checkpoint.safetensors"
    tensors, meta = ckpt.load_state(path)
    key = next(k for k, v in tensors.items() if k.startswith("ema.G.") and v.is_floating_point())
    tensors[key] = torch.full_like(tensors[key], float("nan"))
    # a NaN file written around save_state (by hand, or by an older ganlab)
    save_file(tensors, str(path), metadata={"ganlab": json.dumps(meta)})
    path.with_suffix(".json").unlink()  # no sidecar: the checksum cannot catch it
    with pytest.raises(CheckpointError, match="NaN/inf.*resumed nor sampled"):
        ckpt.load_state(path)
    resumed = tiny(out=str(tmp_path), steps=12, resume=True)
    with pytest.raises(CheckpointError, match=key):
        resumed.fit()
    assert main(["sample", "cgan", "--weights", str(path), "--out", str(tmp_path / "s.png")]) == 2
    assert "NaN/inf" in capsys.readouterr().err
    assert not (tmp_path / "s.png").exists()


# ------------------------------------------------------------------ failed saves
@pytest.mark.parametrize("where", ["half_written", "fsync", "rename"])
def test_a_save_failing_midway_keeps_the_last_good_file(tmp_path, monkeypatch, where):
    path = tmp_path / "checkpoint.safetensors"
    ckpt.save_state(path, {"a": torch.ones(1000)}, {"kind": "checkpoint", "step": 1})
    good, good_json = path.read_bytes(), path.with_suffix(".json").read_text()

    def fail(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "half_written":

        def half(tensors, tmp, metadata=None):
            save_file(tensors, tmp, metadata=metadata)
            data = Path(tmp).read_bytes()
            Path(tmp).write_bytes(data[: len(data) // 2])  # the disk filled up midway
            fail()

        monkeypatch.setattr(ckpt, "save_file", half)
    else:
        monkeypatch.setattr(ckpt.os, "fsync" if where == "fsync" else "replace", fail)
    with pytest.raises(OSError, match="No space"):
        ckpt.save_state(path, {"a": torch.zeros(1000)}, {"kind": "checkpoint", "step": 2})
    monkeypatch.undo()
    assert path.read_bytes() == good and path.with_suffix(".json").read_text() == good_json
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    tensors, meta = ckpt.load_state(path)  # still loads, checksum and all
    assert meta["step"] == 1 and torch.equal(tensors["a"], torch.ones(1000))


def test_kill_between_the_two_renames_of_a_save_still_resumes_bit_identically(
    tmp_path, monkeypatch
):
    """SIGKILL after the checkpoint's rename, before its sidecar's: the sidecar is the previous
    save's (its checksum describes another file) and a half-written .tmp is left behind."""
    straight = tiny(out=str(tmp_path / "a"), checkpoint_every=3)
    straight.fit()

    class Killed(BaseException):
        pass

    write_text = ckpt.atomic_write_text

    def killed_at_step_6(path, text):
        if json.loads(text).get("step") == 6:
            (path.parent / "checkpoint.json.ganlab-x1y2z3w4.tmp").write_text(text[:10])
            raise Killed
        return write_text(path, text)

    monkeypatch.setattr(ckpt, "atomic_write_text", killed_at_step_6)
    with pytest.raises(Killed):
        tiny(out=str(tmp_path / "b"), checkpoint_every=3).fit()
    monkeypatch.undo()
    run = tmp_path / "b"
    assert ckpt.read_meta(run / "checkpoint.safetensors")["step"] == 6
    assert json.loads((run / "checkpoint.json").read_text())["step"] == 3  # stale sidecar
    resumed = tiny(out=str(run), checkpoint_every=3, resume=True)
    resumed.fit()
    assert resumed.step == 12 and not list(run.glob("*.tmp"))
    assert_same_weights(straight, resumed)
