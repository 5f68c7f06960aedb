r"""The digit judge: a small CNN that reads real MNIST digits, used to measure generators.

The papers measure generated images with a pretrained Inception-v3 (Inception Score, FID,
KID). It cannot be downloaded here, and it never saw a digit anyway. The course trains its
own *judge* on the real digits of the digits world, with their exact labels, and ships the
weights (``ganlab/weights/digit_judge.safetensors``). Two of its outputs are used:

* ``judge(x)``: logits over the 10 classes. ``softmax`` gives p(y | x) for the conditional
  accuracy of a CGAN (is G(z | y) recognised as y?) and for the Inception-Score form.
* ``judge.features(x)``: the 128-d penultimate activations phi(x), the stand-in for
  Inception's pool3 features in the Frechet distance and KID.

Both take float images of any precision: float64 (e.g. from numpy) is converted to the
judge's float32; uint8 pixels or values outside [-1, 1] are refused with a clear error.

Architecture (input (N, 1, 28, 28) in [-1, 1])::

    conv3x3(1->16)  BN ReLU maxpool2   -> (N, 16, 14, 14)
    conv3x3(16->32) BN ReLU maxpool2   -> (N, 32, 7, 7)
    conv3x3(32->64) BN ReLU maxpool2   -> (N, 64, 3, 3)
    flatten -> linear(576->128) ReLU   -> phi(x), (N, 128)      features()
    dropout 0.3 -> linear(128->10)     -> logits, (N, 10)       forward()

Training: ``load_digits("train")`` (4,000 real digits), random affine augmentation (rotation
+-10 degrees, scale 0.9-1.1, shift +-2 px), Adam with a one-cycle learning rate, cross-entropy
with label smoothing 0.05. It is evaluated on the 1,000 held-out digits of
``load_digits("test")``, which it never sees during training.

Reproduce the shipped weights::

    python -m ganlab.judges.digits --train --out ganlab/weights/digit_judge.safetensors
"""

from __future__ import annotations

import argparse
import datetime as _dt
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.data.digits import IMAGE_SHAPE, NUM_CLASSES, load_digits
from ganlab.train import checkpoint as ckpt
from ganlab.validation import check_images, in_dtype_of

SHIPPED = "digit_judge"  # ganlab/weights/digit_judge.safetensors
MODEL = "judges.DigitJudge"
COMMAND = "python -m ganlab.judges.digits --train --out ganlab/weights/digit_judge.safetensors"
DEFAULT_EPOCHS = 15


class DigitJudge(nn.Module):
    """A small CNN classifier of (N, 1, 28, 28) digits in [-1, 1]; see the module docstring."""

    def __init__(self, width: int = 16, feature_dim: int = 128, dropout: float = 0.3):
        super().__init__()
        self.config = {"width": width, "feature_dim": feature_dim, "dropout": dropout}
        w = width

        def block(c_in: int, c_out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.trunk = nn.Sequential(block(1, w), block(w, 2 * w), block(2 * w, 4 * w))
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(4 * w * 3 * 3, feature_dim), nn.ReLU())
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(feature_dim, NUM_CLASSES))

    @property
    def feature_dim(self) -> int:
        return self.config["feature_dim"]

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        """Float digits (N, 1, 28, 28) in [-1, 1]; float64 (or half) ones are converted to the
        judge's dtype (float32), so numpy images need no cast."""
        return in_dtype_of(check_images(x, "digit images", channels=1, size=IMAGE_SHAPE[1:]), self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features phi(x), shape (N, feature_dim), for Frechet distance / KID."""
        return self.embed(self.trunk(self._check(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (N, 10)."""
        return self.head(self.features(x))


@torch.no_grad()
def judge_in_batches(judge: DigitJudge, images: torch.Tensor, batch: int = 500):
    """``(features, logits)`` of ``judge`` on many images, in eval mode, chunk by chunk."""
    check_images(images, "digit images", channels=1, size=IMAGE_SHAPE[1:])
    was_training = judge.training
    judge.eval()
    device = next(judge.parameters()).device
    feats, logits = [], []
    for chunk in images.split(batch):
        f = judge.features(chunk.to(device))
        feats.append(f.cpu())
        logits.append(judge.head(f).cpu())
    judge.train(was_training)
    return torch.cat(feats), torch.cat(logits)


def held_out_accuracy(judge: DigitJudge) -> dict:
    """Accuracy on the 1,000 held-out real digits: ``{"value": acc, "n": 1000}``."""
    from ganlab.metrics import conditional_accuracy

    x, y = load_digits("test")
    _, logits = judge_in_batches(judge, x)
    return {"value": conditional_accuracy(logits, y), "n": len(y)}


def random_affine(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Small random rotations, scalings and shifts (the background, -1, is padded in)."""
    n = len(x)
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, generator=gen)  # noqa: E731
    angle = u(-10, 10) * math.pi / 180
    scale = u(0.9, 1.1)
    shift = u(-2, 2), u(-2, 2)  # pixels; affine_grid works in [-1, 1] units: 2 px = 4/28
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [
            torch.stack([cos, -sin, shift[0] * 2 / 28], 1),
            torch.stack([sin, cos, shift[1] * 2 / 28], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    # grid_sample pads with 0; shift to a 0 background (-1 -> 0) and back.
    out = F.grid_sample(x + 1, grid, align_corners=False, padding_mode="zeros")
    return (out - 1).clamp(-1, 1)


def train_digit_judge(
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 3e-3,
    width: int = 16,
    feature_dim: int = 128,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> tuple[DigitJudge, dict]:
    """Train a judge on the 4,000 training digits; report its held-out accuracy.

    Returns ``(judge in eval mode, report)``; the report holds ``held_out_accuracy``
    ``{"value", "n"}``, ``steps``, ``seconds``, ``epochs``, ``seed`` and ``device``.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = torch.device(device)
    x, y = load_digits("train")
    judge = DigitJudge(width=width, feature_dim=feature_dim).to(device)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    opt = torch.optim.Adam(judge.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    start, step = time.perf_counter(), 0
    judge.train()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        total = 0.0
        for idx in perm.split(batch_size):
            xb = random_affine(x[idx], gen).to(device)
            loss = F.cross_entropy(judge(xb), y[idx].to(device), label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            total += loss.item() * len(idx)
        if progress:
            print(
                f"epoch {epoch + 1}/{epochs}  loss {total / len(x):.4f}  "
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )
    seconds = time.perf_counter() - start
    judge.eval()
    report = {
        "held_out_accuracy": held_out_accuracy(judge),
        "steps": step,
        "epochs": epochs,
        "seconds": round(seconds, 1),
        "seed": seed,
        "device": str(device),
    }
    return judge, report


def save_digit_judge(judge: DigitJudge, path: str | Path, report: dict, command: str) -> Path:
    """Save the judge with its manifest, then record the file's sha256 in the sidecar JSON."""
    from ganlab.weights import write_manifest_sha256

    manifest = {
        "chapter": "judge:digits",
        "profile": "cpu" if report["device"] == "cpu" else "gpu",
        "command": command,
        "steps": report["steps"],
        "epochs": report["epochs"],
        "seconds": report["seconds"],
        "device": report["device"],
        "metrics": {"held_out_accuracy": report["held_out_accuracy"]},
        "seed": report["seed"],
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
    }
    meta = {"kind": "judge", "model": MODEL, "config": judge.config, "manifest": manifest}
    path = ckpt.save_state(path, ckpt.module_tensors(judge, "judge"), meta)
    write_manifest_sha256(path)
    return path


def load_digit_judge(path: str | Path | None = None, device="cpu") -> DigitJudge:
    """The shipped digit judge (or the one at ``path``), in eval mode."""
    if path is None:
        from ganlab.weights import shipped

        path = shipped(SHIPPED)
    meta = ckpt.read_meta(path)
    if meta.get("model") != MODEL:
        raise ckpt.CheckpointError(f"{path} holds {meta.get('model')!r}, not a {MODEL}")
    config = meta["config"]
    tensors, _ = ckpt.load_state(path, expect={"model": MODEL, "kind": "judge", "config": config})
    judge = DigitJudge(**config)
    ckpt.load_module(judge, tensors, "judge")
    return judge.to(device).eval()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m ganlab.judges.digits", description=__doc__)
    p.add_argument("--train", action="store_true", help="train a judge and save it to --out")
    p.add_argument("--out", default="digit_judge.safetensors")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--evaluate", metavar="PATH", help="held-out accuracy of a saved judge")
    args = p.parse_args(argv)
    if args.train:
        judge, report = train_digit_judge(epochs=args.epochs, seed=args.seed)
        command = " ".join(["python -m ganlab.judges.digits", *argv])
        path = save_digit_judge(judge, args.out, report, command)
        acc = report["held_out_accuracy"]
        print(
            f"held-out accuracy {acc['value']:.4f} on n={acc['n']} digits; "
            f"{report['steps']} steps in {report['seconds']} s; wrote {path}"
        )
        return 0
    if args.evaluate:
        acc = held_out_accuracy(load_digit_judge(args.evaluate))
        print(f"held-out accuracy {acc['value']:.4f} on n={acc['n']} digits")
        return 0
    p.print_help()
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
