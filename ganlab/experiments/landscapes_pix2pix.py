r"""Learnability of the landscapes world: a small pix2pix (Isola et al. 2017) baseline.

Not the SPADE chapter: the map enters at the input of an ordinary U-Net, as in pix2pix.
It answers one question: does a small map -> image model trained for about 20 minutes of one
CPU core paint landscapes a person recognises, and does the landscape judge find the input
map in its pictures?

Generator G: a U-Net on the one-hot map (10 channels) and the style codes (time of day and
season, one-hot, broadcast over the image: 8 channels)::

    64 px (18) -> 32 (w) -> 16 (2w) -> 8 (4w) -> 4 (4w)         conv4x4 stride 2, BN, LReLU 0.2
    4 -> 8 -> 16 -> 32 -> 64, each up step concatenating the skip   convT4x4 stride 2, BN, ReLU
    -> tanh, 3 channels

Discriminator D: a PatchGAN on concat(map, style, image): conv4x4 stride 2 (w, 2w, 4w, BN
after the first) then conv3x3 -> one logit per patch (8x8 patches at 64 px).

Losses (pix2pix): D minimises BCE(D(real), 1) + BCE(D(fake), 0); G minimises
BCE(D(fake), 1) + lambda * |G(m) - x|_1 with lambda = 100; Adam lr 2e-4, betas (0.5, 0.999).
pix2pix's dropout noise is left out (its authors found it did little); the texture noise and
the tint that the style codes do not fix make the L1 target a mean, so G's textures are
smoother than the world's.

Run (single-threaded; writes OUT/generator.safetensors and OUT/report.json)::

    OMP_NUM_THREADS=1 python -m ganlab.experiments.landscapes_pix2pix --cpu-minutes 20
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

from ganlab.data.landscapes import NUM_CLASSES, SEASONS, TIMES, load_landscapes, one_hot
from ganlab.train import checkpoint as ckpt

STYLE_DIM = len(TIMES) + len(SEASONS)
MODEL = "experiments.Pix2PixUNet"


def condition(labels: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """(N, S, S) class ids and (N, 2) style codes -> (N, 18, S, S): one-hot map + style."""
    s = labels.shape[-1]
    style = torch.cat(
        [F.one_hot(styles[:, 0], len(TIMES)), F.one_hot(styles[:, 1], len(SEASONS))], 1
    ).float()
    return torch.cat([one_hot(labels), style[:, :, None, None].expand(-1, -1, s, s)], 1)


class Pix2PixUNet(nn.Module):
    """The generator; see the module docstring. ``depth`` down steps (size must be divisible
    by 2**depth)."""

    def __init__(self, width: int = 32, depth: int = 4):
        super().__init__()
        self.config = {"width": width, "depth": depth}
        chans = [min(width * 2**i, 4 * width) for i in range(depth)]
        cin = NUM_CLASSES + STYLE_DIM
        self.down = nn.ModuleList()
        for i, c in enumerate(chans):
            layers = [nn.Conv2d(cin, c, 4, 2, 1, bias=i == 0)]
            if i > 0:
                layers.append(nn.BatchNorm2d(c))
            self.down.append(nn.Sequential(*layers, nn.LeakyReLU(0.2)))
            cin = c
        self.up = nn.ModuleList()
        for i in reversed(range(depth)):
            cout = chans[i - 1] if i > 0 else width
            self.up.append(
                nn.Sequential(
                    nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(),
                )
            )
            cin = cout + (chans[i - 1] if i > 0 else NUM_CLASSES + STYLE_DIM)
        self.out = nn.Conv2d(cin, 3, 3, padding=1)

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        skips, x = [cond], cond
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottleneck is x itself
        for block in self.up:
            x = torch.cat([block(x), skips.pop()], 1)
        return torch.tanh(self.out(x))


class PatchD(nn.Module):
    """PatchGAN on concat(condition, image): one logit per patch."""

    def __init__(self, width: int = 32):
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(NUM_CLASSES + STYLE_DIM + 3, w, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False),
            nn.BatchNorm2d(2 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 3, padding=1),
        )

    def forward(self, cond: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([cond, image], 1))


def train(
    out: str,
    size: int = 64,
    cpu_minutes: float = 20.0,
    batch: int = 16,
    n_train: int = 4000,
    l1_weight: float = 100.0,
    seed: int = 0,
    max_steps: int | None = None,
    log_every: int = 100,
    wall_minutes: float | None = None,
) -> dict:
    """Train until ``cpu_minutes`` of this process's CPU time are spent (or ``max_steps``
    steps, or ``wall_minutes`` of wall-clock time on a shared machine, whichever comes first)."""
    torch.manual_seed(seed)
    data = load_landscapes(n_train, "train", size, progress=False)
    G, D = Pix2PixUNet(), PatchD()
    opt_g = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    step, history = 0, []
    while (time.process_time() - cpu0) < 60 * cpu_minutes and (
        max_steps is None or step < max_steps
    ):
        idx = torch.randint(len(data), (batch,), generator=gen)
        cond, real = condition(data.labels[idx], data.styles[idx]), data.float_images(idx)
        flip = torch.rand(batch, generator=gen) < 0.5  # the world is mirror-symmetric
        cond[flip], real[flip] = cond[flip].flip(-1), real[flip].flip(-1)
        fake = G(cond)
        d_real, d_fake = D(cond, real), D(cond, fake.detach())
        loss_d = 0.5 * (
            bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        )
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        d_fake = D(cond, fake)
        adv, l1 = bce(d_fake, torch.ones_like(d_fake)), (fake - real).abs().mean()
        loss_g = adv + l1_weight * l1
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        step += 1
        if step % log_every == 0:
            row = {"step": step, "cpu_s": round(time.process_time() - cpu0, 1),
                   "d": round(loss_d.item(), 4), "adv": round(adv.item(), 4),
                   "l1": round(l1.item(), 4)}  # fmt: skip
            history.append(row)
            print(json.dumps(row), flush=True)
    report = {
        "size": size,
        "batch": batch,
        "steps": step,
        "cpu_seconds": round(time.process_time() - cpu0, 1),
        "wall_seconds": round(time.perf_counter() - wall0, 1),
        "threads": torch.get_num_threads(),
        "stopped_by": "max_steps"
        if max_steps is not None and step >= max_steps
        else ("cpu_minutes" if time.process_time() - cpu0 >= 60 * cpu_minutes else "wall_minutes"),
        "train_scenes": n_train,
        "l1_weight": l1_weight,
        "history": history,
    }
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    meta = {"kind": "generator", "model": MODEL, "config": G.config, "manifest": {
        k: v for k, v in report.items() if k != "history"}}  # fmt: skip
    ckpt.save_state(out / "generator.safetensors", ckpt.module_tensors(G.eval(), "G"), meta)
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    return report


def load_generator(path) -> Pix2PixUNet:
    tensors, meta = ckpt.load_state(path, expect={"model": MODEL})
    G = Pix2PixUNet(**meta["config"])
    ckpt.load_module(G, tensors, "G")
    return G.eval().requires_grad_(False)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m ganlab.experiments.landscapes_pix2pix")
    p.add_argument("--out", default="runs/landscapes_pix2pix")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--cpu-minutes", type=float, default=20.0)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--wall-minutes", type=float, help="also stop after this wall-clock time")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    report = train(args.out, args.size, args.cpu_minutes, max_steps=args.max_steps,
                   wall_minutes=args.wall_minutes)  # fmt: skip
    print(f"{report['steps']} steps, {report['cpu_seconds']} s CPU, "
          f"{report['wall_seconds']} s wall; wrote {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
