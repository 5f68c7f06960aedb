"""The landscapes world's protocol (chapter 7): how well a map -> image generator paints the map.

A chapter gives :func:`evaluate_map_to_image` its ``generate(labels, seed, style_images=None)
-> images`` (maps (N, S, S) class ids -> (N, 3, S, S) in [-1, 1]); the protocol draws the
held-out maps, the real references and the baselines itself. With the landscape judge
(:mod:`ganlab.judges.landscapes`, never used in training):

* **SPADE's protocol** (the paper's Table 1): the judge segments each generated image; mIoU
  and pixel accuracy against the map it was made from. Beside it the *ceiling* (the real
  images of the same maps) and the *floor* (the generated images scored against another
  scene's map: what a picture that ignores its map earns from the layout statistics alone).
* **Frechet distance in the judge's features** (the stand-in for FID): generated images of
  the test maps against real images of OTHER scenes (the judge's features carry the layout,
  so the reference must not share the maps), with the real-vs-real baseline (the real test
  images against the same reference) and a ladder of degraded real images (drawn at 1/2 and
  1/4 of the size and upsampled, and blurred), so that a number can be read.
* **Multi-modal diversity** (with ``diversity``): ``k`` images of each of ``m`` maps from
  different seeds: the mean absolute pixel difference between pairs of images of one map
  (0 for a generator that ignores its noise or has none), beside the same between the
  world's own renderings of one map in different random styles (the world's diversity).
* **Style following** (``multimodal``, a generator with an encoder): each of ``m`` maps
  rendered by the world in the four (time, season) styles (morning/spring, noon/summer,
  evening/autumn, overcast/winter) as references; G paints the map in each reference's
  style; the share of outputs whose mean colour is closest to their own reference's (chance
  1/4).

Sample sizes are in the result (``n``, ``m``, ``k``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ganlab.data.landscapes import SEASONS, TIMES, load_landscapes, render, to_float

Generate = Callable[..., torch.Tensor]
DEGRADATIONS = ("half_res", "quarter_res", "blur")


def degrade(images: torch.Tensor, kind: str) -> torch.Tensor:
    """Real images made worse in a known way: ``half_res`` / ``quarter_res`` (drawn smaller,
    antialiased, and upsampled bilinearly) or ``blur`` (a 5x5 binomial blur)."""
    size = images.shape[-1]
    if kind in ("half_res", "quarter_res"):
        factor = 0.5 if kind == "half_res" else 0.25
        small = F.interpolate(images, scale_factor=factor, mode="bilinear", antialias=True)
        return F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False)
    if kind == "blur":
        k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0])
        k = (k[:, None] * k[None, :]) / 256
        w = k.expand(images.shape[1], 1, 5, 5).to(images)
        return F.conv2d(F.pad(images, (2, 2, 2, 2), mode="replicate"), w, groups=images.shape[1])
    raise ValueError(f"unknown degradation {kind!r}: expected one of {DEGRADATIONS}")


def style_reference(labels, style) -> torch.Tensor:
    """The world's rendering of map ``labels`` (S, S) in ``style``: (1, 3, S, S) in [-1, 1]
    (the reference image whose style the encoder reads)."""
    image = render(np.asarray(labels, dtype=np.uint8), style)  # (S, S, 3) uint8
    return to_float(torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))[None])


@functools.lru_cache(maxsize=4)
def real_reference(n: int, size: int) -> dict:
    """The real side, computed once per (n, size): the judge, the test maps and images, the
    reference features of ``n`` OTHER real scenes (train split, seed 1: unseen in training),
    and the real baselines (ceiling, real-vs-real FD, the degraded ladder)."""
    from ganlab.judges.landscapes import judge_maps, load_landscape_judge
    from ganlab.metrics import frechet_distance

    judge = load_landscape_judge()
    test = load_landscapes(n, "test", size, progress=False)
    other = load_landscapes(n, "train", size, seed=1, progress=False)
    real = test.float_images()
    ref = judge.embed_images(other.float_images())
    labels = test.labels.long()
    pick = lambda d: {k: d[k] for k in ("n", "miou", "accuracy")}  # noqa: E731
    baselines = {"real_images": pick(judge_maps(judge, real, labels))}
    fd = {"real_vs_real": frechet_distance(judge.embed_images(real), ref)}
    for kind in DEGRADATIONS:
        fd[f"real_{kind}"] = frechet_distance(judge.embed_images(degrade(real, kind)), ref)
    return {"judge": judge, "labels": labels, "ref": ref, "baselines": baselines, "fd": fd}


@torch.no_grad()
def diversity(generate: Generate, labels: torch.Tensor, k: int = 4, seed: int = 0) -> float:
    """Mean |x_i - x_j| (pixels in [-1, 1]) over the pairs of ``k`` images of each map,
    drawn with seeds seed .. seed + k - 1; averaged over the maps."""
    images = torch.stack([generate(labels, seed + i) for i in range(k)], 1)  # (m, k, 3, S, S)
    pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
    return float(torch.stack([(images[:, i] - images[:, j]).abs().mean() for i, j in pairs]).mean())


def world_diversity(m: int, size: int, k: int = 4) -> float:
    """The same measure on the world itself: each of ``m`` test maps rendered in ``k``
    random styles (the diversity of real landscapes of one map)."""
    import numpy as np

    from ganlab.data.landscapes import LandscapesWorld, draw_style, render, to_float

    world, rng = LandscapesWorld("test"), np.random.default_rng(0)
    values = []
    for i in range(m):
        scene = world.scene(i, size)
        imgs = [
            to_float(
                torch.from_numpy(render(scene.labels, draw_style(rng), scene.instances))
            ).permute(2, 0, 1)
            for _ in range(k)
        ]
        values += [(imgs[a] - imgs[b]).abs().mean() for a in range(k) for b in range(a + 1, k)]
    return float(torch.stack(values).mean())


STYLE_PAIRS = tuple(zip(TIMES, SEASONS))  # (morning, spring), (noon, summer), ...


@torch.no_grad()
def style_following(generate: Generate, labels: torch.Tensor) -> dict:
    """Each map rendered in the four ``STYLE_PAIRS`` as references; G paints each in its
    reference's style; the share of outputs whose mean colour is nearest their own
    reference's among the four (chance 0.25), and the mean colour distance to it."""
    from ganlab.data.landscapes import Style

    hits, dists = [], []
    for lab in labels:
        refs = torch.cat([style_reference(lab, Style(t, s)) for t, s in STYLE_PAIRS])
        out = generate(lab.expand(len(refs), -1, -1), 0, style_images=refs)
        mean_out, mean_ref = out.mean(dim=(2, 3)), refs.mean(dim=(2, 3))  # (4, 3) each
        d = torch.cdist(mean_out, mean_ref)  # (4 outputs, 4 references)
        hits.append((d.argmin(1) == torch.arange(len(refs))).float().mean())
        dists.append(d.diagonal().mean())
    return {
        "m": len(labels),
        "styles": len(STYLE_PAIRS),
        "accuracy": float(torch.stack(hits).mean()),
        "chance": 1 / len(STYLE_PAIRS),
        "mean_colour_distance": float(torch.stack(dists).mean()),
    }


@torch.no_grad()
def evaluate_map_to_image(
    generate: Generate,
    n: int = 500,
    size: int = 64,
    seed: int = 0,
    multimodal: bool = False,
    diversity_maps: int = 50,
    diversity_k: int = 4,
    diversity: bool = True,
) -> dict:
    """The landscapes protocol (module docstring) on the first ``n`` test maps at ``size``."""
    from ganlab.judges.landscapes import judge_maps
    from ganlab.metrics import frechet_distance

    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2 (test maps), got {n!r}")
    real = real_reference(n, size)
    judge, labels = real["judge"], real["labels"]
    fake = generate(labels, seed)
    if fake.shape != (n, 3, size, size):
        raise ValueError(
            f"generate returned {tuple(fake.shape)}, expected ({n}, 3, {size}, {size})"
        )
    pick = lambda d: {k: d[k] for k in ("n", "miou", "accuracy")}  # noqa: E731
    result = {
        "n": n,
        "size": size,
        "seed": seed,
        "spade_protocol": {
            "generated": judge_maps(judge, fake, labels),
            **real["baselines"],
            "generated_vs_other_maps": pick(judge_maps(judge, fake, labels.roll(1, dims=0))),
        },
        "frechet_judge_vs_other_real_scenes": {
            "generated": frechet_distance(judge.embed_images(fake), real["ref"]),
            **real["fd"],
        },
    }
    if diversity:
        m = min(diversity_maps, n)
        result["diversity"] = {
            "m": m,
            "k": diversity_k,
            "generated": _diversity(generate, labels[:m], diversity_k, seed),
            "world_random_styles": world_diversity(m, size, diversity_k),
        }
    if multimodal:
        result["style_following"] = style_following(generate, labels[: min(50, n)])
    return result


_diversity = diversity  # the keyword ``diversity`` of evaluate_map_to_image shadows the name


def summary_metrics(result: dict) -> dict:
    """The headline numbers of a result, for a manifest."""
    proto, fd = result["spade_protocol"], result["frechet_judge_vs_other_real_scenes"]
    out = {
        "n": result["n"],
        "miou": proto["generated"]["miou"],
        "accuracy": proto["generated"]["accuracy"],
        "miou_real_images": proto["real_images"]["miou"],
        "miou_vs_other_maps": proto["generated_vs_other_maps"]["miou"],
        "fd_judge": fd["generated"],
        "fd_judge_real_vs_real": fd["real_vs_real"],
    }
    if "diversity" in result:
        out["diversity"] = result["diversity"]["generated"]
    if "style_following" in result:
        out["style_following_accuracy"] = result["style_following"]["accuracy"]
    return out


__all__ = [
    "DEGRADATIONS",
    "degrade",
    "diversity",
    "evaluate_map_to_image",
    "real_reference",
    "style_following",
    "style_reference",
    "summary_metrics",
    "world_diversity",
]
