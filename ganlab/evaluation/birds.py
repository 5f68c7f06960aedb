"""Measuring text-to-image generators on the birds world (chapters 2 to 4), one protocol.

For ``n`` held-out birds (``test``: new birds of the training species; ``zeroshot``: species
never seen), take one caption of each, generate one image from it, and measure:

* **text alignment** (``ganlab.metrics.alignment``): the bird judge reads the generated
  image's attributes; accuracy on exactly the attributes the caption names, with chance.
  The headline value counts only the groups the judge itself reads reliably on real
  held-out birds (accuracy >= 0.85 in its manifest: at 64 px the beak and the eye are a few
  pixels and it reads them near chance); ``value_all_groups`` counts every group;
* **Frechet distance** in the judge's 256-d features, generated vs the real birds of the
  same captions, with a real-vs-real baseline (other real birds of the split);
* **R-precision** (AttnGAN's, with the course's DAMSM encoders): the generated image's global
  vector must pick its own caption among 100;
* the same numbers for the **real** images, as the ceiling.

``generate(captions: list[str], seed: int) -> images (N, 3, H, W) in [-1, 1]`` is the only
thing a chapter provides. :func:`caption_diversity` measures how varied the samples of one
caption are; :func:`summary_metrics` keeps a result's headline numbers (what a manifest keeps).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch

from ganlab.data.birds import ATTRIBUTES, GROUPS, load_birds
from ganlab.metrics import frechet_distance
from ganlab.metrics.alignment import text_alignment
from ganlab.metrics.retrieval import r_precision

NUM_VALUES = tuple(len(ATTRIBUTES[g]) for g in GROUPS)
RELIABLE_ACCURACY = 0.85


@lru_cache(maxsize=1)
def reliable_groups() -> tuple[str, ...]:
    """Attribute groups the shipped judge reads with accuracy >= 0.85 on real test birds."""
    from ganlab.weights import manifest

    per_group = manifest("bird_judge")["manifest"]["metrics"]["test"]["per_group"]
    return tuple(g for g in GROUPS if per_group[g] >= RELIABLE_ACCURACY)


def _alignment(predicted: torch.Tensor, named: torch.Tensor) -> dict:
    keep = torch.tensor([g in reliable_groups() for g in GROUPS])
    reliable = text_alignment(predicted, named.masked_fill(~keep, -1), GROUPS, NUM_VALUES)
    every = text_alignment(predicted, named, GROUPS, NUM_VALUES)
    return {**reliable, "value_all_groups": every["value"], "per_group": every["per_group"]}


DEFAULT_CAPTIONS = (
    "a small bird with a red crown, blue wings and a white belly",
    "this bird has a yellow breast, black wings and a short pointed beak",
)  # what ``ganlab sample`` draws when no --caption is given
SPLITS = ("test", "zeroshot")  # new birds of the training species; species never seen


@lru_cache(maxsize=2)
def bird_judge():
    """The shipped bird judge, loaded once (``ganlab.judges.birds.load_bird_judge``)."""
    from ganlab.judges.birds import load_bird_judge

    return load_bird_judge()


@lru_cache(maxsize=2)
def damsm_encoders():
    """The shipped DAMSM (caption encoder, image encoder), loaded once: R-precision's."""
    from ganlab.text.train import load_encoders

    return load_encoders("damsm")


def eval_captions(split: str, n: int, which: int = 0) -> tuple[list[str], torch.Tensor, object]:
    """Caption ``which`` of each of the first ``n`` birds of ``split``; its named codes (n, 14)."""
    data = load_birds(n, split, 64, progress=False)
    captions = [row[which] for row in data.captions]
    return captions, data.mentions[:, which], data


@lru_cache(maxsize=8)
def real_reference(split: str, n: int) -> dict:
    """Judge features and metrics of the real birds: the ceiling and the FD baseline."""
    captions, named, data = eval_captions(split, n)
    real = data.float_images()
    judge = bird_judge()
    feats = judge.embed_images(real)
    other = load_birds(2 * n, split, 64, progress=False).float_images(slice(n, 2 * n))
    out = {
        "features": feats,
        "alignment": _alignment(judge.predict(real), named),
        "fd_real_vs_real": frechet_distance(judge.embed_images(other), feats),
    }
    out["r_precision"] = _r_precision(real, captions)
    return out


def _r_precision(images: torch.Tensor, captions: list[str]) -> dict:
    text_enc, image_enc = damsm_encoders()
    with torch.no_grad():
        img = torch.cat([image_enc(images[s : s + 250])[1] for s in range(0, len(images), 250)])
        txt = torch.cat(
            [text_enc(captions[s : s + 250]).sentence for s in range(0, len(captions), 250)]
        )
    mean, std = r_precision(img, txt)
    return {"value": mean, "std": std, "candidates": 100, "n": len(captions)}


def evaluate_text_to_image(
    generate: Callable[[list[str], int], torch.Tensor],
    n: int = 1000,
    split: str = "test",
    seed: int = 0,
) -> dict:
    """The chapter-independent metrics of a text-to-image generator (see the module docstring)."""
    captions, named, _ = eval_captions(split, n)
    ref = real_reference(split, n)
    images = []
    for s in range(0, n, 250):
        images.append(generate(captions[s : s + 250], seed + s).float().cpu())
    images = torch.cat(images).clamp(-1, 1)
    judge = bird_judge()
    feats = judge.embed_images(images)
    align = _alignment(judge.predict(images), named)
    result = {
        "split": split,
        "n": n,
        "text_alignment": {
            "value": align["value"],
            "n_named": align["n"],
            "chance": align["chance"],
            "real": ref["alignment"]["value"],
            "groups": list(reliable_groups()),
            "value_all_groups": align["value_all_groups"],
            "real_all_groups": ref["alignment"]["value_all_groups"],
            "per_group": {g: round(v[0], 4) for g, v in align["per_group"].items()},
        },
        "frechet_distance": {
            "value": frechet_distance(feats, ref["features"]),
            "n": {"generated": n, "real": n},
            "real_vs_real": ref["fd_real_vs_real"],
            "features": "bird judge (256-d)",
        },
    }
    result["r_precision"] = {**_r_precision(images, captions), "real": ref["r_precision"]["value"]}
    return result


def summary_metrics(result: dict) -> dict:
    """The headline numbers of one :func:`evaluate_text_to_image` result (what a manifest keeps)."""
    return {
        "text_alignment": result["text_alignment"]["value"],
        "chance": result["text_alignment"]["chance"],
        "frechet_distance": result["frechet_distance"]["value"],
        "real_vs_real": result["frechet_distance"]["real_vs_real"],
        "r_precision": result["r_precision"].get("value"),
        "n": result["n"],
    }


@torch.no_grad()
def caption_diversity(
    generate: Callable[[list[str], int], torch.Tensor],
    captions: list[str],
    per_caption: int = 16,
    seed: int = 0,
) -> dict:
    """Mean pairwise distance between ``per_caption`` samples of each caption, averaged.

    In the bird judge's features (a perceptual stand-in for LPIPS) and in pixels; ``generate``
    must draw at the judge's 64 px. Caption ``i`` draws from seed ``seed + 1000 i``. Higher is
    more varied; compare models on the same captions and sample sizes.
    """
    from ganlab.metrics.diversity import mean_pairwise_distance

    if per_caption < 2:
        raise ValueError(f"per_caption must be at least 2, got {per_caption}")
    judge = bird_judge()
    feats, pixels = [], []
    for i, caption in enumerate(captions):
        images = generate([caption] * per_caption, seed + 1000 * i)
        feats.append(mean_pairwise_distance(judge.embed_images(images)))
        pixels.append(mean_pairwise_distance(images))
    return {
        "judge_features": sum(feats) / len(feats),
        "pixels": sum(pixels) / len(pixels),
        "captions": len(captions),
        "per_caption": per_caption,
    }


def diversity_captions(n: int = 50, split: str = "test") -> list[str]:
    """Caption 0 of the first ``n`` birds of ``split``: the diversity protocol's captions."""
    return eval_captions(split, n)[0]
