r"""The face judge: a small CNN that reads an animal face's factors, used to measure generators.

Inception-v3 and VGG cannot be downloaded here and never saw these faces. The course trains
its own judge on the faces world's images with their exact factors and ships the weights
(``ganlab/weights/face_judge.safetensors``, float16). What it gives the chapters:

* ``judge(x)``: a dict factor -> logits for each categorical factor (``domain``, ``kind``,
  ``face_shape``, ``ear_shape``, ``mouth``, ``marking``, fur ``base`` and ``secondary``
  colours, ``eye_color``, ``texture``, ``whiskers``, ``background``) and ``"continuous"``,
  the (N, 11) readings of ``yaw``, ``pitch``, ``roll``, ``cx``, ``cy``, ``scale``,
  ``ear_size``, ``eye_size``, ``eye_open``, ``muzzle``, ``nose_size``, each mapped from its
  range to [-1, 1]. ``judge.read(x)`` turns them into names and natural units (radians...).
  Used for **domain accuracy** (StarGAN v2) and **factor preservation** (how much of a source
  face's pose survives a translation).
* ``judge.features(x)``: the (N, 256) penultimate activations, the stand-in for Inception's
  pool3 features in the Frechet distance and KID.
* ``judge.multilayer_features(x)``: the four stages' activations
  [(N, 32, 32, 32), (N, 64, 16, 16), (N, 128, 8, 8), (N, 160, 4, 4)], the stand-in for the
  VGG / AlexNet layers of LPIPS (Zhang et al. 2018) and of PPL.

Architecture (input (N, 3, H, W) in [-1, 1], any H from 8 to 256, resized to 64 px)::

    stage 1: conv3x3/2 3 -> 32, BN, LReLU                              -> (N, 32, 32, 32)
    stage 2: conv3x3 32 -> 64, BN, LReLU; conv3x3/2 64 -> 64, BN, LReLU -> (N, 64, 16, 16)
    stage 3: the same, 64 -> 128                                       -> (N, 128, 8, 8)
    stage 4: the same, 128 -> 160                                      -> (N, 160, 4, 4)
    mean over positions -> linear(160 -> 256) LReLU                    -> features (N, 256)
    one linear head per categorical factor on the features
    continuous: conv1x1 160 -> 32, LReLU, flatten the 4x4 map (512), linear 128, LReLU,
    linear 11 (pose and position are *where* things are; the mean over positions drops it)

Training: the first 20,000 faces of ``train`` at 64 px; a third of each batch is blurred and
a third is drawn at 32 px and upsampled (generators' images are softer and smaller than the
renderer's); Adam with a one-cycle schedule; loss = the cross-entropies summed over the
categorical factors + 4 x the mean squared error of the continuous readings. Evaluated on
held-out ``test`` faces at 64 px and at 32 px (what the learnability GAN draws).

The shipped judge was trained in two steps, because the world was re-balanced for 32 px (cache
version 2: aligned pose, larger eyes, fainter strokes) after a first judge had been trained on
the first version: 900 steps from scratch on version 1 (lr 3e-3, 417 s of CPU), then 250 steps
fine-tuned on version 2 (lr 1e-3, one-cycle again). Reproduce (the first file is this module's
shipped judge at commit 9e57987)::

    git show 9e57987:ganlab/weights/face_judge.safetensors > v1_face_judge.safetensors
    python -m ganlab.judges.faces --train --init v1_face_judge.safetensors --steps 250 \
        --lr 1e-3 --out ganlab/weights/face_judge.safetensors

(``python -m ganlab.judges.faces --train --steps 900`` trains one from scratch on the current
world.) The manifest (``ganlab/weights/face_judge.json``) holds the held-out score of every
factor and the calibration of the perceptual distance (:func:`perceptual_calibration`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ganlab.data.faces import CATEGORIES, CONTINUOUS, load_faces
from ganlab.data.faces.factors import denormalise, normalise
from ganlab.judges.shipping import load_judge, save_judge
from ganlab.train import checkpoint as ckpt

SHIPPED = "face_judge"
MODEL = "judges.FaceJudge"
COMMAND = "python -m ganlab.judges.faces --train --out ganlab/weights/face_judge.safetensors"
INPUT_SIZE = 64
FEATURE_DIM = 256
ANGLES = ("yaw", "pitch", "roll")
# the held-out measurement a test repeats: n faces of ``test`` at this size
CHECK_N, CHECK_SIZE = 300, 32


def _conv(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.LeakyReLU(0.2, inplace=True),
    )


def resize_for_judge(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 3, 64, 64): bilinear, antialiased when shrinking."""
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected images (N, 3, H, W) in [-1, 1], got shape {tuple(x.shape)}")
    if x.shape[-2:] == (INPUT_SIZE, INPUT_SIZE):
        return x
    shrink = x.shape[-1] > INPUT_SIZE
    return F.interpolate(
        x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False, antialias=shrink
    )


class FaceJudge(nn.Module):
    """Factor reader of animal faces; see the module docstring."""

    def __init__(
        self, widths: tuple[int, ...] = (32, 64, 128, 160), feature_dim: int = FEATURE_DIM
    ):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        self.config = {"widths": list(widths), "feature_dim": feature_dim}
        stages, c = [_conv(3, widths[0], 2)], widths[0]
        for w in widths[1:]:
            stages.append(nn.Sequential(_conv(c, w, 1), _conv(w, w, 2)))
            c = w
        self.stages = nn.ModuleList(stages)
        self.embed = nn.Sequential(nn.Linear(c, feature_dim), nn.LeakyReLU(0.2))
        self.heads = nn.ModuleDict(
            {name: nn.Linear(feature_dim, len(v)) for name, v in CATEGORIES.items()}
        )
        # pose, position and sizes are *where* things are: read them from the 4x4 map itself
        # (a mean over positions would throw the layout away)
        self.continuous = nn.Sequential(
            nn.Conv2d(c, 32, 1),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(32 * 16, 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, len(CONTINUOUS)),
        )

    def multilayer_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The four stages' activations, (N, C_l, H_l, W_l) at 32, 16, 8 and 4 px."""
        h, maps = resize_for_judge(images), []
        for stage in self.stages:
            h = stage(h)
            maps.append(h)
        return maps

    def _embed(self, top: torch.Tensor) -> torch.Tensor:
        return self.embed(top.mean(dim=(2, 3)))

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 256)."""
        return self._embed(self.multilayer_features(images)[-1])

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        top = self.multilayer_features(images)[-1]
        h = self._embed(top)
        out = {name: head(h) for name, head in self.heads.items()}
        out["continuous"] = self.continuous(top)
        return out

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch: int = 250) -> tuple[torch.Tensor, torch.Tensor]:
        """(codes (N, 12) int64 in ``CATEGORIES`` order, values (N, 11) in natural units)."""
        codes, values = [], []
        for s in range(0, len(images), batch):
            out = self(images[s : s + batch])
            codes.append(torch.stack([out[c].argmax(1) for c in CATEGORIES], 1))
            values.append(torch.from_numpy(denormalise(out["continuous"].float().numpy())))
        return torch.cat(codes), torch.cat(values)

    def read(self, images: torch.Tensor) -> list[dict]:
        """Per image, every factor as the judge reads it: names, and floats in natural units
        (angles in radians, positions and sizes in image widths)."""
        codes, values = self.predict(images)
        rows = []
        for c, v in zip(codes.tolist(), values.tolist(), strict=True):
            row = {name: CATEGORIES[name][k] for name, k in zip(CATEGORIES, c, strict=True)}
            row.update(dict(zip(CONTINUOUS, v, strict=True)))
            rows.append(row)
        return rows

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
        """``features`` in batches: (N, 256)."""
        return torch.cat(
            [self.features(images[s : s + batch]) for s in range(0, len(images), batch)]
        )

    @torch.no_grad()
    def domain_probs(self, images: torch.Tensor, batch: int = 250) -> torch.Tensor:
        """(N, 3) softmax over ``DOMAINS``."""
        return torch.cat(
            [self(images[s : s + batch])["domain"].softmax(1) for s in range(0, len(images), batch)]
        )


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 2.0, 1.0])
    k = (k[:, None] * k[None]) / 16
    return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.expand(3, 1, 3, 3), groups=3)


def _soften(x: torch.Tensor) -> torch.Tensor:
    """64 px -> 32 px (area) -> 64 px (bilinear): what a 32 px generator's image looks like."""
    small = F.interpolate(x, scale_factor=0.5, mode="area")
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)


def held_out_scores(judge: FaceJudge, n: int = CHECK_N, size: int = CHECK_SIZE) -> dict:
    """Per-factor scores on the first ``n`` ``test`` faces drawn at ``size`` px.

    Categorical factors: accuracy. Continuous factors: R^2 (1 - MSE / variance) and the mean
    absolute error in natural units (degrees for the angles).
    """
    judge.eval()
    data = load_faces(n, "test", size, progress=False)
    codes, values = judge.predict(data.float_images())
    accuracy = {
        name: float((codes[:, i] == data.codes[:, i]).double().mean())
        for i, name in enumerate(CATEGORIES)
    }
    true = data.values.double()
    err = values.double() - true
    r2, mae = {}, {}
    for j, name in enumerate(CONTINUOUS):
        r2[name] = float(1 - err[:, j].pow(2).mean() / true[:, j].var(unbiased=False))
        scale = 180 / math.pi if name in ANGLES else 1.0
        mae[name] = float(err[:, j].abs().mean() * scale)
    return {
        "n": n,
        "size": size,
        "accuracy": accuracy,
        "r2": r2,
        "mae": mae,
        "mae_units": {n: ("degrees" if n in ANGLES else "range units") for n in CONTINUOUS},
    }


# ------------------------------------------------------------------ perceptual distance

# continuous factors moved one at a time in the calibration, and the fractions of each
# factor's range they move by
CALIBRATION_FACTORS = CONTINUOUS
CALIBRATION_AMOUNTS = (0.1, 0.25, 0.5, 0.75, 1.0)
# factors a donor face of the same kind hands over in the "k factors swapped" pairs (the fur
# colours travel together: a marking colour is chosen to contrast with its base)
SWAP_FACTORS = (
    ("yaw",), ("pitch",), ("roll",), ("eye_size",), ("eye_open",), ("nose_size",),
    ("mouth",), ("marking",), ("base", "secondary"), ("eye_color",), ("texture",),
    ("background",),
)  # fmt: skip
SWAP_COUNTS = (1, 2, 3, 4, 6, 8)
# the calibration a test repeats: this many faces of ``test`` at this size
CALIBRATION_CHECK_N, CALIBRATION_SIZE = 6, 64


def face_perceptual_distance(judge: FaceJudge):
    """The course's LPIPS stand-in: :class:`ganlab.metrics.perceptual.PerceptualDistance` on
    the judge's four stages with **uniform** weights (no weights are fitted to human
    judgments here). Calibration: :func:`perceptual_calibration`; its numbers are in the
    judge's manifest (``metrics.perceptual``)."""
    from ganlab.metrics.perceptual import PerceptualDistance

    return PerceptualDistance(judge.multilayer_features)


def _calibration_pairs(n: int, size: int):
    """Pairs of test faces that differ in known factors by known amounts.

    Returns (moved, swapped, faces): ``moved`` = (a, b, factor names, amounts) where face i
    is drawn twice with one continuous factor at ``mid -+ amount * range / 2`` (every factor
    of ``CALIBRATION_FACTORS`` x every amount of ``CALIBRATION_AMOUNTS`` x each of the n faces);
    ``swapped`` = (a, b, k) where b is a with k factor groups of ``SWAP_FACTORS`` taken from
    another test face of the same kind (every k of ``SWAP_COUNTS``); ``faces`` = the n faces.
    """
    import numpy as np

    from ganlab.data.faces import RANGES, FacesWorld, render_face, to_float

    world = FacesWorld("test")
    faces = [world.face(i) for i in range(n)]
    draw = lambda fs: to_float(  # noqa: E731
        torch.from_numpy(np.stack([render_face(f, size) for f in fs])).permute(0, 3, 1, 2)
    )
    a, b, names, amounts = [], [], [], []
    for face in faces:
        for name in CALIBRATION_FACTORS:
            lo, hi = RANGES[name]
            mid = (lo + hi) / 2
            for t in CALIBRATION_AMOUNTS:
                half = t * (hi - lo) / 2
                a.append(face.replace(**{name: mid - half}))
                b.append(face.replace(**{name: mid + half}))
                names.append(name)
                amounts.append(t)
    moved = (draw(a), draw(b), names, np.array(amounts))
    rng = np.random.default_rng(15)
    donors = FacesWorld("test", seed=1)
    a, b, k = [], [], []
    for i, face in enumerate(faces):
        j = 0
        while (donor := donors.face(1000 * i + j)).kind != face.kind:
            j += 1
        for count in SWAP_COUNTS:
            groups = rng.choice(len(SWAP_FACTORS), size=count, replace=False)
            changes = {f: donor[f] for g in groups for f in SWAP_FACTORS[g]}
            other = face.replace(**changes)
            if "base" in changes:  # the colours as the donor painted them, jitter and all
                other = _with_fur_of(other, donor)
            a.append(face)
            b.append(other)
            k.append(count)
    swapped = (draw(a), draw(b), np.array(k))
    return moved, swapped, draw(faces)


def _with_fur_of(face, donor):
    """``face`` wearing ``donor``'s exact fur colours."""
    from ganlab.data.faces.factors import Face

    rgb = {**face.rgb, "base": donor.rgb["base"], "secondary": donor.rgb["secondary"]}
    return Face(face.factors, rgb, face.detail)


@torch.no_grad()
def perceptual_calibration(judge: FaceJudge, n: int = 40, size: int = CALIBRATION_SIZE) -> dict:
    """Calibrate :func:`face_perceptual_distance` on the first ``n`` test faces at ``size`` px.

    * one factor moved: Spearman's rho of d with the amount, per continuous factor (n faces x
      5 amounts each) and pooled over all factors;
    * k factors swapped from a donor of the same kind: rho of d with k (n faces x 6 counts);
    * one-pixel shift (right and down, edges repeated) of the n faces: d, and its ratio to d
      between different faces (each face against the next), beside the same ratio for pixel
      mean squared error (``ganlab.metrics.perceptual.calibrate_perceptual_distance``).
    """
    import numpy as np
    import scipy.stats

    from ganlab.metrics.perceptual import calibrate_perceptual_distance

    judge.eval()
    dist = face_perceptual_distance(judge)
    (a, b, names, amounts), (sa, sb, k), faces = _calibration_pairs(n, size)
    moved = calibrate_perceptual_distance(dist, a, b, amounts, shift_images=faces)
    d = torch.cat([dist(a[s : s + 250], b[s : s + 250]) for s in range(0, len(a), 250)]).numpy()
    names = np.array(names)
    per_factor = {
        f: float(scipy.stats.spearmanr(d[names == f], amounts[names == f]).statistic)
        for f in CALIBRATION_FACTORS
    }
    swapped = calibrate_perceptual_distance(dist, sa, sb, k, shift_images=faces)
    return {
        "n_faces": n,
        "size": size,
        "weights": "uniform",
        "moved": {
            "spearman_pooled": moved.spearman,
            "pairs": moved.pairs,
            "spearman_per_factor": per_factor,
            "amounts": list(CALIBRATION_AMOUNTS),
            "mean_d_per_amount": {
                str(t): float(d[amounts == t].mean()) for t in CALIBRATION_AMOUNTS
            },
        },
        "swapped": {
            "spearman": swapped.spearman,
            "pairs": swapped.pairs,
            "mean_d_per_count": {
                str(c): float(dist(sa[k == c], sb[k == c]).mean()) for c in SWAP_COUNTS
            },
        },
        "shift": {
            "one_pixel": moved.shift_distance,
            "different_faces": moved.unrelated_distance,
            "ratio": moved.shift_ratio,
            "pixel_mse_ratio": moved.pixel_shift_ratio,
            "images": moved.shift_images,
        },
    }


def train_face_judge(
    steps: int = 900,
    batch: int = 64,
    lr: float = 3e-3,
    seed: int = 0,
    n_faces: int = 20000,
    init: str | None = None,
):
    """Train a judge from scratch, or fine-tune the one saved at ``init``."""
    torch.manual_seed(seed)
    data = load_faces(n_faces, "train", INPUT_SIZE)
    targets = torch.from_numpy(normalise(data.values.numpy()))
    if init is None:
        judge = FaceJudge()
    else:
        judge = load_face_judge(init).requires_grad_(True).train()
    opt = torch.optim.Adam(judge.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    start, cpu0 = time.perf_counter(), time.process_time()
    bar = tqdm(range(steps), desc="training the face judge", mininterval=10)
    third = batch // 3
    for step in bar:
        idx = torch.randint(len(data), (batch,), generator=gen)
        x = data.float_images(idx)
        x[:third] = _blur(x[:third])
        x[third : 2 * third] = _soften(x[third : 2 * third])
        out = judge(x)
        loss = sum(F.cross_entropy(out[c], data.codes[idx, i]) for i, c in enumerate(CATEGORIES))
        loss = loss + 4 * F.mse_loss(out["continuous"], targets[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 50 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    report = {
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "train_faces": n_faces,
        "seconds": round(time.perf_counter() - start, 1),
        "process_seconds": round(time.process_time() - cpu0, 1),
        "threads": torch.get_num_threads(),
        "device": "cpu",
        "lr": lr,
    }
    if init is not None:
        report["init"] = str(init)
    return judge.eval(), report


def half_precision(judge: FaceJudge) -> FaceJudge:
    """The judge as it ships: weights rounded to float16, computing in float32."""
    for t in judge.state_dict().values():
        if t.is_floating_point():
            t.copy_(t.half().float())
    return judge


def save_face_judge(judge: FaceJudge, path, report: dict, command: str) -> Path:
    """Round to float16, measure the held-out scores of the rounded judge, and save."""
    half_precision(judge)
    metrics = {
        "test_64px": held_out_scores(judge, n=2000, size=64),
        "test_32px": held_out_scores(judge, n=2000, size=32),
        "check": held_out_scores(judge),  # what tests/test_judge_faces.py re-measures
        "perceptual": perceptual_calibration(judge),
        "perceptual_check": perceptual_calibration(judge, n=CALIBRATION_CHECK_N),
    }
    manifest = {
        "chapter": "judge:faces",
        "profile": "cpu",
        "command": command,
        **report,
        "metrics": metrics,
    }
    return save_judge(judge, path, MODEL, manifest, float16=True)


def load_face_judge(path=None, device="cpu") -> FaceJudge:
    """The shipped face judge (or the one at ``path``), frozen, in eval mode, float32."""

    def build(config: dict) -> FaceJudge:
        return FaceJudge(widths=tuple(config["widths"]), feature_dim=config["feature_dim"])

    return load_judge(path, SHIPPED, MODEL, build, device)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python -m ganlab.judges.faces",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--train", action="store_true")
    p.add_argument("--out", default="face_judge.safetensors")
    p.add_argument("--steps", type=int, default=900)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle schedule")
    p.add_argument("--init", help="fine-tune the judge saved here instead of starting afresh")
    args = p.parse_args(argv)
    if not args.train:
        p.print_help()
        return 2
    judge, report = train_face_judge(steps=args.steps, seed=args.seed, lr=args.lr, init=args.init)
    path = save_face_judge(
        judge, args.out, report, " ".join(["python -m ganlab.judges.faces", *argv])
    )
    metrics = ckpt.read_meta(path)["manifest"]["metrics"]
    print(json.dumps(metrics, indent=1))
    print(f"{report['steps']} steps in {report['seconds']} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
