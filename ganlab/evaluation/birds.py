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

:func:`reference_ladder` gives the judge's Frechet distance a scale (COURSE.md's payoff
ladder) for any framing of the world: real birds against real birds, birds drawn at half and
quarter resolution and upsampled, real birds under a 5 x 5 box blur.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F

from ganlab.data.birds import ATTRIBUTES, GROUPS, load_birds
from ganlab.data.birds.dataset import CACHE_VERSION
from ganlab.evaluation.faces import degraded
from ganlab.metrics import frechet_distance, frechet_distance_terms
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


def caption_alignment(predicted: torch.Tensor, named: torch.Tensor) -> dict:
    """How often the judge's reading ``predicted`` (N, 14) agrees with the values each caption
    names, ``named`` (N, 14), -1 where silent: over the reliable groups (``value``) and all."""
    keep = torch.tensor([g in reliable_groups() for g in GROUPS])
    reliable = text_alignment(predicted, named.masked_fill(~keep, -1), GROUPS, NUM_VALUES)
    every = text_alignment(predicted, named, GROUPS, NUM_VALUES)
    return {**reliable, "value_all_groups": every["value"], "per_group": every["per_group"]}


ALIGNMENT_FOLDS = 10  # as R-precision's spread: the std over 10 folds of the captions


def alignment_fold_std(predicted: torch.Tensor, named: torch.Tensor, folds=ALIGNMENT_FOLDS):
    """The spread of :func:`caption_alignment`'s value over ``folds`` equal folds of the
    captions (their std): the unit of the bar "above the no-text baseline by 2 fold-stds".
    NaN when there are fewer captions than folds."""
    n = len(predicted) // folds
    if n < 1:
        return float("nan")
    values = [
        caption_alignment(predicted[k * n : (k + 1) * n], named[k * n : (k + 1) * n])["value"]
        for k in range(folds)
    ]
    return float(torch.tensor(values).std())


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


def eval_captions(
    split: str, n: int, which: int = 0, framing: str = "full", scene: str = "full"
) -> tuple[list[str], torch.Tensor, object]:
    """Caption ``which`` of each of the first ``n`` birds of ``split``; its named codes (n, 14);
    the birds (64 px, in ``framing`` and ``scene``)."""
    data = load_birds(n, split, 64, progress=False, framing=framing, scene=scene)
    captions = [row[which] for row in data.captions]
    return captions, data.mentions[:, which], data


@lru_cache(maxsize=8)
def real_reference(split: str, n: int, framing: str = "full", scene: str = "full") -> dict:
    """Judge features and metrics of the real birds: the ceiling and the FD baseline."""
    captions, named, data = eval_captions(split, n, framing=framing, scene=scene)
    real = data.float_images()
    judge = bird_judge()
    feats = judge.embed_images(real)
    other = load_birds(2 * n, split, 64, progress=False, framing=framing, scene=scene)
    other = other.float_images(slice(n, 2 * n))
    out = {
        "features": feats,
        "alignment": caption_alignment(judge.predict(real), named),
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


def draw_all(generate, captions: list[str], seed: int, batch: int = 250) -> torch.Tensor:
    """One image per caption, in batches of ``batch`` (batch k seeded ``seed + k * batch``),
    on the CPU, clamped to [-1, 1]."""
    parts = [
        generate(captions[s : s + batch], seed + s).float().cpu()
        for s in range(0, len(captions), batch)
    ]
    return torch.cat(parts).clamp(-1, 1)


def evaluate_text_to_image(
    generate: Callable[[list[str], int], torch.Tensor],
    n: int = 1000,
    split: str = "test",
    seed: int = 0,
    framing: str = "full",
    scene: str = "full",
) -> dict:
    """The chapter-independent metrics of a text-to-image generator (see the module docstring);
    a generator trained on another ``framing`` or ``scene`` of the world is measured against
    real birds of that framing and scene (the result then says which)."""
    captions, named, _ = eval_captions(split, n, framing=framing, scene=scene)
    ref = real_reference(split, n, framing, scene)
    images = draw_all(generate, captions, seed)
    judge = bird_judge()
    feats = judge.embed_images(images)
    predicted = judge.predict(images)
    align = caption_alignment(predicted, named)
    result = {
        "split": split,
        "n": n,
        "text_alignment": {
            "value": align["value"],
            "n_named": align["n"],
            "chance": align["chance"],
            "std": alignment_fold_std(predicted, named),
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
    if (framing, scene) != ("full", "full"):
        result["world"] = {"framing": framing, "scene": scene}
    return result


SELECTION_SPLIT = "train"  # snapshots are picked on training birds, never on the test split


def selection_fd(
    generate: Callable[[list[str], int], torch.Tensor],
    n: int = 500,
    seed: int = 0,
    framing: str = "full",
    scene: str = "full",
) -> dict:
    """A cheap score for picking among a run's snapshots (``ganlab ship --pick-snapshot``):
    judge FD of ``n`` generated birds, one per caption of the first ``n`` birds of the
    training split, against those birds. The test split, which the shipped numbers are
    measured on, plays no part in the choice. ``fd_mean`` and ``fd_covariance``: its two
    parts (:func:`ganlab.metrics.frechet_distance_terms`)."""
    captions, _, _ = eval_captions(SELECTION_SPLIT, n, framing=framing, scene=scene)
    ref = reference_features(n, SELECTION_SPLIT, framing, JUDGE_SIZE, scene)
    images = draw_all(generate, captions, seed)
    fd = frechet_distance_terms(bird_judge().embed_images(images), ref)
    parts = {"fd_mean": fd["mean"], "fd_covariance": fd["covariance"]}
    return {"frechet_distance": fd["total"], **parts, "split": SELECTION_SPLIT, "n": n}


def summary_metrics(result: dict) -> dict:
    """The headline numbers of one :func:`evaluate_text_to_image` result (what a manifest keeps)."""
    return {
        "text_alignment": result["text_alignment"]["value"],
        "chance": result["text_alignment"]["chance"],
        "text_alignment_std": result["text_alignment"].get("std"),
        "frechet_distance": result["frechet_distance"]["value"],
        "real_vs_real": result["frechet_distance"]["real_vs_real"],
        "r_precision": result["r_precision"].get("value"),
        "n": result["n"],
    }


@torch.no_grad()
def spread(images: torch.Tensor) -> dict:
    """Mean pairwise distance of ``images`` (n, 3, H, W), n >= 2, in judge features and pixels.

    The judge features are a perceptual stand-in for LPIPS; 0 means every image is the same.
    """
    from ganlab.metrics.diversity import mean_pairwise_distance

    return {
        "judge_features": mean_pairwise_distance(bird_judge().embed_images(images)),
        "pixels": mean_pairwise_distance(images),
    }


@torch.no_grad()
def caption_diversity(
    generate: Callable[[list[str], int], torch.Tensor],
    captions: list[str],
    per_caption: int = 16,
    seed: int = 0,
) -> dict:
    """Mean pairwise distance between ``per_caption`` samples of each caption, averaged.

    In the bird judge's features (a perceptual stand-in for LPIPS) and in pixels
    (:func:`spread`); ``generate`` must draw at the judge's 64 px. Caption ``i`` draws from
    seed ``seed + 1000 i``. Higher is more varied; compare models on the same captions and
    sample sizes.
    """
    if per_caption < 2:
        raise ValueError(f"per_caption must be at least 2, got {per_caption}")
    each = [
        spread(generate([caption] * per_caption, seed + 1000 * i))
        for i, caption in enumerate(captions)
    ]
    return {**_mean_spread(each), "per_caption": per_caption}


def _mean_spread(each: list[dict]) -> dict:
    """The mean of :func:`spread` results, and how many were averaged (``captions``)."""
    return {
        "judge_features": sum(d["judge_features"] for d in each) / len(each),
        "pixels": sum(d["pixels"] for d in each) / len(each),
        "captions": len(each),
    }


@torch.no_grad()
def real_caption_diversity(
    n_captions: int = 50,
    per_caption: int = 16,
    split: str = "test",
    pool: int = 5000,
    framing: str = "full",
    scene: str = "full",
) -> dict:
    """What :func:`caption_diversity` gives for *real* birds: for caption 0 of each of the
    first ``n_captions`` birds of ``split``, the first ``per_caption`` birds of a pool of
    ``pool`` real birds (same split, framing, scene, 64 px) whose attributes match every value
    the caption names (the world's ground truth), their :func:`spread`, averaged over the
    captions that have at least 2 matches. The bar "per-caption diversity at least half of
    real birds'" compares with this."""
    data = load_birds(pool, split, JUDGE_SIZE, progress=False, framing=framing, scene=scene)
    named = data.mentions[:n_captions, 0]  # (n_captions, 14), -1 where the caption is silent
    each = []
    for codes in named:
        said = codes >= 0
        match = (data.attributes[:, said] == codes[said]).all(dim=1).nonzero().flatten()
        if len(match) >= 2:
            each.append(spread(data.float_images(match[:per_caption])))
    if not each:
        raise ValueError(f"no caption had 2 matching birds in a pool of {pool}")
    return {**_mean_spread(each), "per_caption": per_caption, "pool": pool}


def diversity_captions(n: int = 50, split: str = "test") -> list[str]:
    """Caption 0 of the first ``n`` birds of ``split``: the diversity protocol's captions."""
    return eval_captions(split, n)[0]


# --- the payoff ladder: what judge Frechet distances mean, for any framing of the world ---

JUDGE_SIZE = 64  # the bird judge reads 64 px images (it resizes anything else)
LADDER_VERSION = 1  # bump when the rungs change


def upsample(images: torch.Tensor, size: int = JUDGE_SIZE) -> torch.Tensor:
    """(N, 3, h, h) -> (N, 3, size, size), bilinear: how a small image meets a larger ladder.

    Generations drawn at 32 px are measured after this, exactly as the ladder's "drawn at 32
    px" rung, so that rung is the best a perfect 32 px generator can score."""
    if images.shape[-1] == size:
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)


def real_birds(
    n: int,
    split: str = "test",
    size: int = JUDGE_SIZE,
    framing: str = "full",
    offset: int = 0,
    scene: str = "full",
) -> torch.Tensor:
    """Birds ``offset .. offset + n`` of ``split`` as floats (n, 3, size, size) in [-1, 1]."""
    data = load_birds(offset + n, split, size, progress=False, framing=framing, scene=scene)
    return data.float_images(slice(offset, offset + n))


def ladder_rungs(size: int = JUDGE_SIZE) -> tuple[str, ...]:
    """The ladder's rung names for real birds at ``size`` px, best to worst (usually)."""
    return ("real_vs_real", f"drawn_{size // 2}_up", "box_blur_5x5", f"drawn_{size // 4}_up")


@lru_cache(maxsize=8)
def reference_features(
    n: int, split: str = "test", framing: str = "full", size: int = JUDGE_SIZE, scene="full"
) -> torch.Tensor:
    """(n, 256) judge features of the first ``n`` birds of ``split``: the ladder's reference."""
    return bird_judge().embed_images(real_birds(n, split, size, framing, scene=scene))


def _ladder_path(n: int, split: str, framing: str, size: int, scene: str = "full") -> Path:
    from ganlab.weights import manifest

    judge = manifest("bird_judge")["sha256"][:12]  # a new judge is a new ladder
    root = Path(os.environ.get("GANLAB_CACHE", Path.home() / ".cache" / "ganlab")) / "birds"
    name = f"ladder{LADDER_VERSION}_v{CACHE_VERSION}_{split}_{framing}_n{n}_s{size}_{judge}"
    name += "" if scene == "full" else f"_{scene}"
    return root / f"{name}.json"


def reference_ladder(
    n: int = 1000,
    framing: str = "full",
    size: int = JUDGE_SIZE,
    split: str = "test",
    cache: bool = True,
    scene: str = "full",
) -> dict:
    """Judge Frechet distances of degraded real birds against the first ``n`` real birds.

    The reference is birds ``0 .. n`` of ``split`` drawn at ``size`` px in ``framing`` and
    ``scene``; every rung is the *other* birds ``n .. 2n`` of the same split, framing, scene:

    * ``real_vs_real``: as they are (the floor: sampling noise of two sets of n);
    * ``drawn_{size/2}_up`` and ``drawn_{size/4}_up``: drawn by the renderer at half and a
      quarter of ``size``, then upsampled (:func:`upsample`): a perfect generator at that
      resolution;
    * ``box_blur_5x5``: blurred by a 5 x 5 box (``ganlab.evaluation.faces.degraded``).

    FD depends on n (it is biased upwards for small n): compare numbers at the same n only.
    The bird judge was trained on full frames: on the ``cub`` and ``tight`` framings its
    features see birds larger than it ever saw, so the ladder must be re-measured for each
    framing, and a generator of cropped birds is scored against cropped real birds only.

    Drawing and embedding 2n birds at three sizes costs about 40 CPU seconds at n = 1000
    (more the first time a cropped framing is drawn), so the result is cached as JSON
    (``$GANLAB_CACHE/birds/ladder...json``, keyed by the judge's checksum).
    """
    from ganlab.data.birds.render import check_framing, check_scene
    from ganlab.metrics import frechet_distance

    check_framing(framing)
    check_scene(scene)
    if not isinstance(size, int) or size // 4 < 16 or size > 256:
        raise ValueError(f"ladder size must be an int from 64 to 256 px, got {size!r}")
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    path = _ladder_path(n, split, framing, size, scene)
    if cache and path.is_file():
        return json.loads(path.read_text())

    judge = bird_judge()
    ref = reference_features(n, split, framing, size, scene)
    other = real_birds(n, split, size, framing, offset=n, scene=scene)
    half, quarter = (
        upsample(real_birds(n, split, s, framing, offset=n, scene=scene), size)
        for s in (size // 2, size // 4)
    )
    rungs = ladder_rungs(size)
    images = (other, half, degraded(other, "box"), quarter)
    fd = {name: frechet_distance(judge.embed_images(x), ref) for name, x in zip(rungs, images)}
    out = {"n": n, "split": split, "framing": framing, "size": size, "ladder": fd}
    if scene != "full":
        out["scene"] = scene
    if cache:
        from ganlab.atomic import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(out, indent=1) + "\n")
    return out
