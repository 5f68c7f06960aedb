r"""The bird judge: a small CNN that reads a bird's attributes, used to measure generators.

Inception-v3 cannot be downloaded here and never saw these birds. The course trains its own
judge on the birds world's images with their exact attributes and ships the weights
(``ganlab/weights/bird_judge.safetensors``). Its outputs:

* ``judge(x)``: a dict group -> logits over that group's values (14 groups: five plumage
  colours, wing pattern, beak shape / length / colour, eye colour, size, pose, orientation,
  background). Used for **text alignment**: does a generated bird show the attributes its
  caption names?
* ``judge.features(x)``: the 256-d penultimate activations, the stand-in for Inception's pool3
  features in the Frechet distance.

Both take float images of any precision (float64 is converted to the judge's float32) in
[-1, 1]; uint8 pixels or values outside [-1, 1] are refused with a clear error.

Architecture (input (N, 3, H, W) in [-1, 1], resized to 64 px)::

    conv3x3 BN LReLU blocks 3 -> 32 (64 px) -> 64 (32) -> 128 (16) -> 256 (8) -> 256 (4)
    mean over the 4x4 positions -> linear(256 -> 256) LReLU          -> features (N, 256)
    one linear head per attribute group                               -> logits

Training: the first 20,000 birds of ``mixed`` (every attribute drawn independently, so
that no attribute can be guessed from another) at 64 px with random translations and, for a
third of each batch, a blur (generators' images are softer than the renderer's); Adam with a
one-cycle schedule; cross-entropy summed over groups. Evaluated on 1,000 ``test`` birds and
1,000 ``zeroshot`` birds (species it never saw).

Reproduce::

    python -m ganlab.judges.birds --train --out ganlab/weights/bird_judge.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ganlab.data.birds import ATTRIBUTES, GROUPS, load_birds
from ganlab.judges.shipping import load_judge, save_judge
from ganlab.text.encoders import ImageTrunk

SHIPPED = "bird_judge"
MODEL = "judges.BirdJudge"
COMMAND = "python -m ganlab.judges.birds --train --out ganlab/weights/bird_judge.safetensors"
FEATURE_DIM = 256


class BirdJudge(nn.Module):
    """Attribute classifier of birds; see the module docstring."""

    def __init__(self, width: int = 32, feature_dim: int = FEATURE_DIM):
        super().__init__()
        self.config = {"width": width, "feature_dim": feature_dim}
        self.trunk = ImageTrunk(width)
        self.embed = nn.Sequential(nn.Linear(self.trunk.channels, feature_dim), nn.LeakyReLU(0.2))
        self.heads = nn.ModuleDict(
            {g: nn.Linear(feature_dim, len(v)) for g, v in ATTRIBUTES.items()}
        )

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 256)."""
        _, top = self.trunk(images)
        return self.embed(top.mean(dim=(2, 3)))

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.features(images)
        return {g: head(h) for g, head in self.heads.items()}

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
        """(N, 14) int64 predicted codes, in ``GROUPS`` order."""
        out = []
        for s in range(0, len(images), batch):
            logits = self(images[s : s + batch])
            out.append(torch.stack([logits[g].argmax(1) for g in GROUPS], 1))
        return torch.cat(out)

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
        return torch.cat(
            [self.features(images[s : s + batch]) for s in range(0, len(images), batch)]
        )


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None]) / 16
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.expand(3, 1, 3, 3), groups=3)


def accuracy_by_group(judge: BirdJudge, split: str, n: int = 1000) -> dict:
    """Per-group accuracy on ``n`` held-out birds of ``split``, and the mean over groups."""
    judge.eval()
    seed = 1 if split == "mixed" else 0  # mixed seed 0 is the training data
    data = load_birds(n, split, 64, seed=seed, progress=False)
    pred = judge.predict(data.float_images())
    per = {
        g: float((pred[:, i] == data.attributes[:, i]).double().mean())
        for i, g in enumerate(GROUPS)
    }
    return {"n": n, "mean": sum(per.values()) / len(per), "per_group": per}


def train_bird_judge(
    steps: int = 3000, batch: int = 64, lr: float = 2e-3, seed: int = 0, n_birds: int = 20000
):
    torch.manual_seed(seed)
    data = load_birds(n_birds, "mixed", 64)
    judge = BirdJudge()
    opt = torch.optim.Adam(judge.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="training the bird judge")
    for step in bar:
        idx = torch.randint(len(data), (batch,), generator=gen)
        x = data.float_images(idx)
        x = torch.roll(x, shifts=torch.randint(-3, 4, (2,), generator=gen).tolist(), dims=(2, 3))
        x[: batch // 3] = _blur(x[: batch // 3])
        logits = judge(x)
        target = data.attributes[idx]
        loss = sum(F.cross_entropy(logits[g], target[:, i]) for i, g in enumerate(GROUPS))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{float(loss):.3f}")
    report = {
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "train_birds": n_birds,
        "seconds": round(time.perf_counter() - start, 1),
        "device": "cpu",
    }
    report["accuracy"] = {s: accuracy_by_group(judge, s) for s in ("test", "zeroshot", "mixed")}
    return judge.eval(), report


def save_bird_judge(judge: BirdJudge, path, report: dict, command: str) -> Path:
    manifest = {
        "chapter": "judge:birds",
        "profile": "cpu",
        "command": command,
        **{k: v for k, v in report.items() if k != "accuracy"},
        "metrics": report["accuracy"],
    }
    return save_judge(judge, path, MODEL, manifest)


def load_bird_judge(path=None, device="cpu") -> BirdJudge:
    """The shipped bird judge (or the one at ``path``), frozen, in eval mode."""
    return load_judge(path, SHIPPED, MODEL, lambda config: BirdJudge(**config), device)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m ganlab.judges.birds", description=__doc__)
    p.add_argument("--train", action="store_true")
    p.add_argument("--out", default="bird_judge.safetensors")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.train:
        p.print_help()
        return 2
    judge, report = train_bird_judge(steps=args.steps, seed=args.seed)
    path = save_bird_judge(
        judge, args.out, report, " ".join(["python -m ganlab.judges.birds", *argv])
    )
    print(json.dumps(report["accuracy"], indent=1))
    print(f"{report['steps']} steps in {report['seconds']} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
