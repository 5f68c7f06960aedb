r"""The landscape judge: a small segmenter that reads a landscape's map back from its image.

SPADE's metric needs a pretrained segmentation network (DeepLab-v2 on COCO-Stuff, UperNet on
ADE20K, DRN on Cityscapes); none can be downloaded here and none ever saw these landscapes.
The course trains its own on the landscapes world's images with their exact maps and ships
it (``ganlab/weights/landscape_judge.safetensors``, float16). Its outputs:

* ``judge(x)``: logits (N, 10, H, W) over ``CLASSES``, at the input's size;
* ``judge.segment(x)``: the predicted map (N, H, W), int64;
* ``judge.features(x)``: (N, 128) features (the bottleneck, averaged over positions) for the
  Frechet distance, the stand-in for Inception's pool3.

Inputs are float images (N, 3, H, W) in [-1, 1], any H = W from 16 to 256 px; they are
resized to 64 px (bilinear, antialiased when shrinking) and the logits resized back.

Architecture (a small U-Net; w = 16)::

    64 px: [conv3x3 BN ReLU] x2, 3 -> w              --------------- skip --+
    32 px: maxpool, [conv3x3 BN ReLU] x2, w -> 2w    --------- skip ---+     |
    16 px: maxpool, [conv3x3 BN ReLU] x2, 2w -> 4w   --- skip --+      |     |
     8 px: maxpool, [conv3x3 BN ReLU] x2, 4w -> 8w  -> mean -> features (8w = 128)
    up x2, concat skip, [conv3x3 BN ReLU] x2 ... back to 64 px -> conv1x1 -> 10 logits

Training: the first 4,000 ``train`` scenes at 64 px with horizontal flips (the world is
mirror-symmetric), and for a third of each batch a blur or a trip through 32 or 16 px and
back (generators' images are softer than the renderer's); Adam with a one-cycle schedule;
pixel-wise cross-entropy. Scored on held-out ``test`` scenes at 64 and 32 px with
:func:`ganlab.metrics.segmentation.segmentation_scores` (the numbers are in the manifest and
re-measured by ``tests/test_judge_landscapes.py``).

Reproduce::

    python -m ganlab.judges.landscapes --out ganlab/weights/landscape_judge.safetensors
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.data.landscapes import CLASSES, NUM_CLASSES, load_landscapes
from ganlab.judges.shipping import load_judge, save_judge
from ganlab.metrics.segmentation import segmentation_scores
from ganlab.validation import check_images, in_dtype_of

SHIPPED = "landscape_judge"
MODEL = "judges.LandscapeJudge"
COMMAND = "python -m ganlab.judges.landscapes --out ganlab/weights/landscape_judge.safetensors"
JUDGE_SIZE = 64
EVAL_N = 100  # held-out scenes per size in the manifest (and the test)


def _double_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def to_judge_size(images: torch.Tensor, size: int = JUDGE_SIZE) -> torch.Tensor:
    """Bilinear resize of (N, 3, H, W) to ``size`` px (antialiased when shrinking)."""
    if images.shape[-1] == size and images.shape[-2] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False,
                         antialias=images.shape[-1] > size)  # fmt: skip


class LandscapeJudge(nn.Module):
    """Semantic segmenter of landscapes; see the module docstring."""

    def __init__(self, width: int = 16, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.config = {"width": width, "num_classes": num_classes}
        w = width
        self.down = nn.ModuleList(
            [_double_conv(3, w), _double_conv(w, 2 * w), _double_conv(2 * w, 4 * w)]
        )
        self.bottom = _double_conv(4 * w, 8 * w)
        self.up = nn.ModuleList(
            [
                _double_conv(8 * w + 4 * w, 4 * w),
                _double_conv(4 * w + 2 * w, 2 * w),
                _double_conv(2 * w + w, w),
            ]  # fmt: skip
        )
        self.head = nn.Conv2d(w, num_classes, 1)
        self.feature_dim = 8 * w

    def _check(self, images: torch.Tensor) -> torch.Tensor:
        check_images(images, "images", channels=3)
        h, w = images.shape[-2:]
        if h != w or not 16 <= h <= 256:
            raise ValueError(f"images must be square, 16 to 256 px, got {h}x{w}")
        return in_dtype_of(images, self)

    def _encode(self, x: torch.Tensor):
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        return self.bottom(x), skips

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> (N, 128): the bottleneck averaged over its 8x8 positions."""
        x, _ = self._encode(to_judge_size(self._check(images)))
        return x.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [-1, 1] -> logits (N, 10, H, W)."""
        size = images.shape[-1]
        x, skips = self._encode(to_judge_size(self._check(images)))
        for block, skip in zip(self.up, reversed(skips), strict=True):
            x = block(torch.cat([F.interpolate(x, scale_factor=2.0, mode="nearest"), skip], 1))
        logits = self.head(x)
        if size != JUDGE_SIZE:
            logits = F.interpolate(logits, size=(size, size), mode="bilinear",
                                   align_corners=False)  # fmt: skip
        return logits

    @torch.no_grad()
    def segment(self, images: torch.Tensor, batch: int = 100) -> torch.Tensor:
        """Predicted maps (N, H, W) int64."""
        chunks = range(0, len(images), batch)
        return torch.cat([self(images[s : s + batch]).argmax(1) for s in chunks])

    @torch.no_grad()
    def embed_images(self, images: torch.Tensor, batch: int = 100) -> torch.Tensor:
        """Features (N, 128) in batches."""
        return torch.cat(
            [self.features(images[s : s + batch]) for s in range(0, len(images), batch)]
        )


@torch.no_grad()
def judge_maps(judge: LandscapeJudge, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """SPADE's protocol on ``images`` (N, 3, S, S) in [-1, 1] made from maps ``labels``
    (N, S, S): the judge segments the images; mIoU and pixel accuracy against the maps.
    Sample size: N images (all their pixels in one confusion matrix)."""
    if len(images) != len(labels) or images.shape[-2:] != labels.shape[-2:]:
        raise ValueError(
            f"images {tuple(images.shape)} and labels {tuple(labels.shape)} must pair one map "
            "of the same size with each image"
        )
    pred = judge.eval().segment(images)
    scores = segmentation_scores(pred, labels.long(), NUM_CLASSES, CLASSES)
    return {"n": len(images), **scores}


def held_out_scores(judge: LandscapeJudge, size: int, n: int = EVAL_N) -> dict:
    """The judge on the first ``n`` ``test`` scenes at ``size`` px (their exact maps)."""
    data = load_landscapes(n, "test", size, progress=False)
    return judge_maps(judge, data.float_images(), data.labels)


def _soften(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A blur (binomial 3x3) or a down-and-up resample through 32 or 16 px."""
    kind = int(torch.randint(3, (1,), generator=gen))
    if kind == 0:
        k = torch.tensor([1.0, 2.0, 1.0])
        k = (k[:, None] * k[None]) / 16
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), k.expand(3, 1, 3, 3), groups=3)
    low = (32, 16)[kind - 1]
    small = F.interpolate(x, size=(low, low), mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(small, size=x.shape[-2:], mode="bilinear", align_corners=False)


def train_landscape_judge(
    steps: int = 1200, batch: int = 16, lr: float = 3e-3, seed: int = 0, n_train: int = 4000
):
    torch.manual_seed(seed)
    data = load_landscapes(n_train, "train", JUDGE_SIZE)
    judge = LandscapeJudge()
    opt = torch.optim.Adam(judge.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    for step in range(steps):
        idx = torch.randint(len(data), (batch,), generator=gen)
        x, y = data.float_images(idx), data.labels[idx].long()
        flip = torch.rand(batch, generator=gen) < 0.5
        x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        third = batch // 3
        x[:third] = _soften(x[:third], gen)
        loss = F.cross_entropy(judge(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step:5d}  loss {float(loss.detach()):.4f}  "
                  f"cpu {time.process_time() - cpu_start:.0f} s", flush=True)  # fmt: skip
    report = {
        "steps": steps,
        "batch": batch,
        "seed": seed,
        "train_scenes": n_train,
        "seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "device": "cpu",
    }
    judge.eval()
    report["metrics"] = {f"test_{s}px": held_out_scores(judge, s) for s in (64, 32)}
    return judge, report


def save_landscape_judge(judge: LandscapeJudge, path, report: dict, command: str) -> Path:
    """Write the judge (float16 tensors) and its manifest; record the checksum."""
    manifest = {"chapter": "judge:landscapes", "profile": "cpu", "command": command, **report}
    return save_judge(judge, path, MODEL, manifest, float16=True)


def load_landscape_judge(path=None, device="cpu") -> LandscapeJudge:
    """The shipped landscape judge (or the one at ``path``), float32, frozen, in eval mode."""
    return load_judge(path, SHIPPED, MODEL, lambda config: LandscapeJudge(**config), device)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m ganlab.judges.landscapes", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("--out", default="landscape_judge.safetensors")
    p.add_argument("--steps", type=int, default=1200)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    judge, report = train_landscape_judge(steps=args.steps, seed=args.seed)
    command = " ".join(["python -m ganlab.judges.landscapes", *argv])
    path = save_landscape_judge(judge, args.out, report, command)
    # the shipped numbers are those of the float16 weights as loaded back
    loaded = load_landscape_judge(path)
    report["metrics"] = {f"test_{s}px": held_out_scores(loaded, s) for s in (64, 32)}
    path = save_landscape_judge(loaded, path, report, command)
    if Path(path).resolve().parent == Path(__file__).resolve().parent.parent / "weights":
        from ganlab.weights import write_index

        write_index()  # shipped: the index of every shipped file includes it
    for key, m in report["metrics"].items():
        print(f"{key}: mIoU {m['miou']:.4f}  pixel accuracy {m['accuracy']:.4f}  (n {m['n']})")
    print(f"{report['steps']} steps, {report['cpu_seconds']} s CPU; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
