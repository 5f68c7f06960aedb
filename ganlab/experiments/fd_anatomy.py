r"""What a text-to-image generator's judge FD is made of, against real birds of its world.

The Frechet distance of chapters 2-4 is one number; this takes it apart, so a study can say
*what* keeps a generator above a rung of the ladder. For ``n`` training captions (one image
each, drawn as ``ganlab ship --pick-snapshot`` draws them) it prints:

* **FD** and its two parts: ``mean`` (the average features differ) and ``covariance`` (how the
  features spread and co-vary differs), beside the same for real birds drawn at 32 px and
  upsampled (the ladder's "drawn at 32 px" rung: what a perfect 32 px generator scores);
* **spread**: the trace of the features' covariance, generated against real, and the variance
  along real birds' principal directions in bands (the first 5, the next 15, 40, the rest):
  too little spread (collapse) shows as a smaller trace, spread in the wrong places as excess
  variance in the later bands;
* **blur**: the FD after the generated images are blurred as the ladder's blurred rung blurs
  real birds (a 5x5 box; lower: the images carry noise the judge dislikes; higher: the judge
  rewards their sharpness);
* **attributes**: for each of the judge's 14 groups (colours, beak, pose, size, background...)
  the total variation distance between the distributions of its predicted value over the
  generated and the real birds (0: the same mix of values; 1: none in common), and for the
  most distant group the share of each of its values, generated against real.

Example::

    python -m ganlab.experiments.fd_anatomy attngan runs/attn/generator.safetensors
    python -m ganlab.experiments.fd_anatomy gan-int-cls ganlab/weights/gan_int_cls.safetensors
"""

from __future__ import annotations

import argparse
import sys

import torch

from ganlab.data.birds import ATTRIBUTES, GROUPS
from ganlab.validation import check_count, check_images

BANDS = ((0, 5), (5, 20), (20, 60), (60, None))  # real birds' principal directions


def feature_spread(feats: torch.Tensor, real: torch.Tensor) -> dict:
    """Trace of each set's feature covariance, and the variance of both along real's
    principal directions, summed per band of :data:`BANDS`."""
    cov_real = torch.cov(real.double().T)
    eigenvalues, vectors = torch.linalg.eigh(cov_real)  # ascending
    eigenvalues, vectors = eigenvalues.flip(0), vectors.flip(1)
    along = (vectors.T @ torch.cov(feats.double().T) @ vectors).diagonal()  # (D,)
    dims = len(along)
    bands = {
        f"{a}-{min(b or dims, dims)}": {
            "real": eigenvalues[a:b].sum().item(),
            "generated": along[a:b].sum().item(),
        }
        for a, b in BANDS
        if a < dims
    }
    return {
        "trace": {"generated": along.sum().item(), "real": eigenvalues.sum().item()},
        "bands": bands,
    }


def value_mix(predicted: torch.Tensor, group: str) -> dict[str, float]:
    """The share of each of ``group``'s values among ``predicted`` (N, 14) codes
    (``BirdJudge.predict``), by the value's name: {"plain": 0.31, "striped": 0.39, ...}."""
    if group not in GROUPS:
        raise ValueError(f"unknown attribute group {group!r}: expected one of {GROUPS}")
    values = ATTRIBUTES[group]
    counts = torch.bincount(predicted[:, GROUPS.index(group)], minlength=len(values)).double()
    return dict(zip(values, (counts / counts.sum()).tolist()))


def attribute_distance(predicted: torch.Tensor, real: torch.Tensor) -> dict[str, float]:
    """Per group of ``GROUPS``: the total variation distance between the mixes of the
    predicted values (:func:`value_mix`); ``predicted`` and ``real``: (N, 14) codes."""
    out = {}
    for group in GROUPS:
        a, b = value_mix(predicted, group), value_mix(real, group)
        out[group] = 0.5 * sum(abs(a[v] - b[v]) for v in a)
    return out


def fd_anatomy(images: torch.Tensor, real: torch.Tensor, drawn_32: torch.Tensor) -> dict:
    """Take apart the judge FD of ``images`` against ``real`` (both (N, 3, S, S) in [-1, 1];
    smaller images are upsampled to the judge's 64 px as the ladder does); ``drawn_32``: the
    same real birds drawn at 32 px, the reference for the parts."""
    from ganlab.evaluation.birds import bird_judge, upsample
    from ganlab.evaluation.faces import degraded  # the ladder's blurs, birds' and faces'
    from ganlab.metrics import frechet_distance_terms

    for name, x in (("images", images), ("real", real), ("drawn_32", drawn_32)):
        check_images(x, name, channels=3)
    if not len(images) == len(real) == len(drawn_32):
        raise ValueError(
            f"images, real and drawn_32 must hold as many birds, got {len(images)}, "
            f"{len(real)} and {len(drawn_32)}"
        )
    judge = bird_judge()
    real = upsample(real)
    ref = judge.embed_images(real)
    images = upsample(images)
    feats = judge.embed_images(images)
    predicted, predicted_real = judge.predict(images), judge.predict(real)
    tv = attribute_distance(predicted, predicted_real)
    worst = max(tv, key=tv.get)
    return {
        "n": len(images),
        "fd": frechet_distance_terms(feats, ref),
        "fd_drawn_32": frechet_distance_terms(judge.embed_images(upsample(drawn_32)), ref),
        "fd_blurred": frechet_distance_terms(judge.embed_images(degraded(images, "box")), ref),
        "spread": feature_spread(feats, ref),
        "attributes": tv,
        "worst_group": {  # the group whose values the generator gets most wrong
            "group": worst,
            "generated": value_mix(predicted, worst),
            "real": value_mix(predicted_real, worst),
        },
    }


def _print(path: str, out: dict) -> None:
    fd, ref, blur = out["fd"], out["fd_drawn_32"], out["fd_blurred"]
    print(f"{path} (n = {out['n']} training captions)")
    print(
        f"  FD {fd['total']:.1f} = mean {fd['mean']:.1f} + covariance {fd['covariance']:.1f}"
        f" | real birds drawn at 32 px: {ref['total']:.1f} = {ref['mean']:.1f} + "
        f"{ref['covariance']:.1f} | after the ladder's 5x5 box blur: {blur['total']:.1f}"
    )
    s = out["spread"]
    bands = ", ".join(f"{k}: {v['generated']:.1f} / {v['real']:.1f}" for k, v in s["bands"].items())
    print(
        f"  spread (generated / real): trace {s['trace']['generated']:.1f} / "
        f"{s['trace']['real']:.1f}; along real's principal directions {bands}"
    )
    tv = out["attributes"]
    cells = ", ".join(f"{g} {v:.2f}" for g, v in tv.items())
    print(f"  attributes, total variation from real (sum {sum(tv.values()):.2f}): {cells}")
    w = out["worst_group"]
    mix = ", ".join(f"{v} {w['generated'][v]:.2f} / {w['real'][v]:.2f}" for v in w["real"])
    print(f"  its most distant group, {w['group']} (generated / real): {mix}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ganlab.experiments.fd_anatomy",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("chapter", choices=("gan-int-cls", "stackgan", "attngan"))
    p.add_argument("generators", nargs="+", help="the chapter's weights or checkpoints")
    p.add_argument("--n", type=int, default=500, help="training captions (default 500)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from ganlab.chapters import get_chapter
    from ganlab.chapters.contract import world_of
    from ganlab.evaluation.birds import draw_all, eval_captions, real_birds

    chapter = get_chapter(args.chapter)
    try:
        check_count(args.n, "--n", minimum=2)
        loaded = [(path, chapter.load(path, "cpu")) for path in args.generators]
    except (ValueError, KeyError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path, (G, meta) in loaded:
        world = world_of(meta)
        captions, _, data = eval_captions("train", args.n, **world)
        images = draw_all(chapter.generator(G.eval(), meta), captions, args.seed)
        drawn_32 = real_birds(args.n, "train", 32, world["framing"], scene=world["scene"])
        _print(path, fd_anatomy(images, data.float_images(), drawn_32))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
