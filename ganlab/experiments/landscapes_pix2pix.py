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

Run (single-threaded; writes OUT/generator.safetensors and OUT/report.json), then measure
and draw the figure (``book/figures/landscapes_learnability.png``)::

    OMP_NUM_THREADS=1 python -m ganlab.experiments.landscapes_pix2pix --cpu-minutes 20
    python -m ganlab.experiments.landscapes_pix2pix --evaluate runs/landscapes_pix2pix

Measured (``evaluate``): the landscape judge's mIoU / pixel accuracy of G's images against
their input maps (SPADE's protocol), beside the same on the real images of those maps (the
ceiling) and on G's images of *other* maps (the floor: what a picture that ignores its map
scores); the judge's Frechet distance of G's images of the test maps to real images of
*other* scenes, beside the real test images (the real-vs-real floor) and the real test images
drawn at a quarter of the size and upsampled, both against the same other scenes. (The judge's
features carry the layout, so a set paired map-for-map with the reference would score below
the floor: the reference must be other scenes.)
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


@torch.no_grad()
def evaluate(run, n: int = 500, figure: str | None = None) -> dict:
    """SPADE's protocol and the judge's Frechet distance on ``n`` test scenes (see the module
    docstring); writes ``RUN/eval.json`` and, when asked, the learnability figure."""
    from ganlab.judges.landscapes import judge_maps, load_landscape_judge
    from ganlab.metrics import frechet_distance

    run = Path(run)
    G = load_generator(run / "generator.safetensors")
    size = json.loads((run / "report.json").read_text())["size"]
    judge = load_landscape_judge()
    test = load_landscapes(n, "test", size, progress=False)
    train_real = load_landscapes(n, "train", size, seed=1, progress=False)  # unseen by G
    labels = test.labels.long()
    fake = torch.cat([G(condition(labels[s : s + 100], test.styles[s : s + 100]))
                      for s in range(0, n, 100)])  # fmt: skip
    real = test.float_images()
    small = F.interpolate(real, scale_factor=0.25, mode="bilinear", antialias=True)
    quarter = F.interpolate(small, size=(size, size), mode="bilinear")
    shifted = labels.roll(1, dims=0)  # each image judged against another scene's map
    feats = {k: judge.embed_images(x) for k, x in
             (("real", real), ("fake", fake), ("train", train_real.float_images()),
              ("quarter", quarter))}  # fmt: skip
    pick = lambda d: {k: d[k] for k in ("n", "miou", "accuracy")}  # noqa: E731
    result = {
        "n": n,
        "size": size,
        "spade_protocol": {
            "pix2pix": judge_maps(judge, fake, labels),
            "real_images": pick(judge_maps(judge, real, labels)),
            "pix2pix_vs_other_maps": pick(judge_maps(judge, fake, shifted)),
        },
        "frechet_judge_vs_other_real_scenes": {
            "pix2pix": frechet_distance(feats["fake"], feats["train"]),
            "real": frechet_distance(feats["real"], feats["train"]),
            "real_quarter_res": frechet_distance(feats["quarter"], feats["train"]),
        },
    }
    (run / "eval.json").write_text(json.dumps(result, indent=1) + "\n")
    if figure:
        _figure(G, test, fake, size, figure, result)
    return result


def _figure(G, test, fake, size: int, path: str, result: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganlab.data.landscapes import painted_map
    from ganlab.viz.landscapes import add_legend, image_to_unit, map_image_grid

    k = 12
    fig = map_image_grid(test.labels[:k], test.images[:k], ncol=3, extra=fake[:k],
                         extra_title="pix2pix")  # fmt: skip
    proto = result["spade_protocol"]
    fig.suptitle(
        f"map -> image, pix2pix baseline at {size} px (held-out maps). Judge mIoU: pix2pix "
        f"{proto['pix2pix']['miou']:.3f}, real {proto['real_images']['miou']:.3f}, "
        f"other maps {proto['pix2pix_vs_other_maps']['miou']:.3f} (n {result['n']})",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0.06, 1, 0.95))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    # a painted map, G's picture of it in four styles
    labels = torch.from_numpy(painted_map(size).astype("int64"))[None].expand(4, -1, -1)
    styles = torch.tensor([[0, 0], [1, 1], [2, 2], [3, 3]])
    out = G(condition(labels, styles))
    fig, axes = plt.subplots(1, 5, figsize=(9.5, 2.5))
    from ganlab.data.landscapes import SEASONS, TIMES, colorize

    axes[0].imshow(colorize(labels[0].numpy()), interpolation="nearest")
    axes[0].set_title("painted map", fontsize=8)
    for i, ax in enumerate(axes[1:]):
        ax.imshow(image_to_unit(out[i]), interpolation="nearest")
        ax.set_title(f"pix2pix: {TIMES[i]}, {SEASONS[i]}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    add_legend(fig, labels[0].unique().tolist(), ncol=10)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    painted = Path(path).with_name(Path(path).stem + "_painted.png")
    fig.savefig(painted, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m ganlab.experiments.landscapes_pix2pix")
    p.add_argument("--out", default="runs/landscapes_pix2pix")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--cpu-minutes", type=float, default=20.0)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--wall-minutes", type=float, help="also stop after this wall-clock time")
    p.add_argument("--evaluate", metavar="RUN", help="measure a finished run instead")
    p.add_argument("--figure", default="book/figures/landscapes_learnability.png")
    p.add_argument("--n", type=int, default=500, help="--evaluate: test scenes")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.evaluate:
        result = evaluate(args.evaluate, args.n, args.figure)
        print(json.dumps(result, indent=1))
        return 0
    report = train(args.out, args.size, args.cpu_minutes, max_steps=args.max_steps,
                   wall_minutes=args.wall_minutes)  # fmt: skip
    print(f"{report['steps']} steps, {report['cpu_seconds']} s CPU, "
          f"{report['wall_seconds']} s wall; wrote {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
