r"""What StackGAN's Stage-II adds to a sketch, measured on real birds.

Stage-II's job is to redraw Stage-I's low-resolution sketch with detail. Whether a weak
Stage-II is held back by its sketches or by itself can be told apart by handing it the best
sketch there is: a real bird drawn at the sketch's size. Each row is judge Frechet distance
at 64 px (with its two parts, :func:`ganlab.metrics.frechet_distance_terms`) against the
first ``n`` birds of the training split, for ``n`` other training birds (``n .. 2n``):

* ``real s1 birds upsampled``: the sketch alone, what Stage-II starts from;
* ``Stage-II on real s1 birds``: what the refiner makes of a perfect sketch, with each bird's
  caption 0;
* ``real S birds upsampled``: a perfect refiner at Stage-II's size S;
* with ``--noise S ...``, ``Stage-II on real s1 birds + noise S``: the same sketches with
  Gaussian pixel noise of std S (images in [-1, 1]), as speckled as Stage-I's sketches are;
* with ``--sketches-from SOURCE ...``, ``Stage-II on SOURCE``: the same captions' sketches
  from another generator, SOURCE being Stage-I weights (a candidate Stage-I, judged by what
  this Stage-II makes of its sketches) or ``gan-int-cls`` (chapter 2's shipped birds, area-
  shrunk to s1: how far a sketch as good as a one-stage model's would carry Stage-II; with
  a ``gan-int-cls itself`` row, its birds as they are);
* ``Stage-II on its Stage-I`` and, with ``--untrained``, ``untrained Stage-II on its
  Stage-I`` (a fresh Stage-II on the same frozen Stage-I, with standing BatchNorm
  statistics): how much of Stage-II's gain is learned.

If the second row sits near the first while the third is far below, the refiner adds little
detail even to perfect sketches: a better Stage-I alone would not lift Stage-II. Example::

    python -m ganlab.experiments.stage2_on_real ganlab/weights/stackgan_stage2.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from ganlab.chapters import stackgan as chapter
from ganlab.evaluation.birds import (
    JUDGE_SIZE,
    SELECTION_SPLIT,
    bird_judge,
    eval_captions,
    real_birds,
    reference_features,
    upsample,
)
from ganlab.metrics import frechet_distance_terms
from ganlab.models import stackgan as M
from ganlab.text.train import load_encoders
from ganlab.validation import check_count

BATCH = 250


def _score(images: torch.Tensor, reference: torch.Tensor, label: str) -> dict:
    fd = frechet_distance_terms(bird_judge().embed_images(upsample(images.clamp(-1, 1))), reference)
    parts = {"fd_mean": fd["mean"], "fd_covariance": fd["covariance"]}
    return {"label": label, "fd": fd["total"], **parts}


@torch.no_grad()
def refined(G: M.StageIIGenerator, sketches: torch.Tensor, text: torch.Tensor, seed: int):
    """Stage-II's images of given sketches (N, 3, s1, s1) and text embeddings (N, 1024)."""
    gen = torch.Generator().manual_seed(seed)
    parts = [
        G.refine(sketches[i : i + BATCH], text[i : i + BATCH], gen)[0]
        for i in range(0, len(sketches), BATCH)
    ]
    return torch.cat(parts)


@torch.no_grad()
def untrained_like(G: M.StageIIGenerator, meta: dict, seed: int) -> M.StageIIGenerator:
    """A fresh Stage-II of G's shape on G's frozen Stage-I, with standing BatchNorm statistics
    computed as an export does (its samples are then comparable with G's)."""
    torch.manual_seed(seed)
    recipe = chapter.CHAPTER.recipe_of(meta)
    fresh = recipe.generator_spec().build()  # G's shape, freshly initialised
    fresh.stage1.load_state_dict(G.stage1.state_dict())  # the same frozen Stage-I
    device = torch.device("cpu")
    chapter.standing_statistics(fresh, recipe, recipe.data(device), device)
    return fresh.eval()


def speckled(sketches: torch.Tensor, std: float, seed: int) -> torch.Tensor:
    """Sketches (N, 3, s, s) in [-1, 1] plus Gaussian pixel noise of ``std``, clamped."""
    noise = torch.randn(sketches.shape, generator=torch.Generator().manual_seed(seed))
    return (sketches + std * noise).clamp(-1, 1)


CHAPTER2 = "gan-int-cls"  # --sketches-from: chapter 2's shipped generator


@torch.no_grad()
def chapter2_birds(captions: list[str], encoder, seed: int, world: dict | None = None):
    """Chapter 2's shipped birds of ``captions``, (N, 3, 32, 32) in [-1, 1]; ``world``
    (``framing``, ``scene``), when given, must be the one chapter 2's model was trained on."""
    from ganlab.chapters import gan_int_cls

    G, meta = gan_int_cls.load_generator()
    own = {k: meta["config"].get(k, "full") for k in ("framing", "scene")}
    if world is not None and world != own:
        raise ValueError(
            f"--sketches-from {CHAPTER2}: chapter 2's shipped model draws birds of {own}, but "
            f"this Stage-II is measured on {world}"
        )
    return gan_int_cls.generate(G, captions, seed, encoder).clamp(-1, 1)


@torch.no_grad()
def sketches_from(source: str, captions: list[str], size: int, encoder, seed: int):
    """(N, 3, size, size) sketches of ``captions`` by the Stage-I weights at ``source``
    (chapter 2's birds, the other source, are shrunk by :func:`measure` itself)."""
    G1, _ = chapter.load_generator(source, stage=1)
    if isinstance(G1, M.StageIIGenerator) or G1.image_size != size:
        raise ValueError(f"--sketches-from {source}: expected a {size} px Stage-I generator")
    return chapter.generate(G1.eval(), captions, seed, encoder)


def measure(
    path,
    n: int = 500,
    seed: int = 0,
    untrained: bool = False,
    noise: tuple[float, ...] = (),
    sources: tuple[str, ...] = (),
) -> list[dict]:
    """The rows described in the module's docstring, for the Stage-II generator at ``path``."""
    G, meta = chapter.load_generator(path, stage=2)
    if not isinstance(G, M.StageIIGenerator):
        raise ValueError(f"{path} holds a Stage-I generator; this measures a Stage-II one")
    world = {k: meta["config"].get(k, "full") for k in ("framing", "scene")}
    s1, size = G.stage1_size, G.image_size
    reference = reference_features(n, SELECTION_SPLIT, world["framing"], JUDGE_SIZE, world["scene"])
    kwargs = {"framing": world["framing"], "offset": n, "scene": world["scene"]}
    sketches = real_birds(n, SELECTION_SPLIT, s1, **kwargs)  # birds n .. 2n at s1 px
    captions = eval_captions(SELECTION_SPLIT, 2 * n, **world)[0][n:]
    encoder = load_encoders("joint")[0]  # loaded once, for every row
    text = encoder(captions).sentence
    rows = [
        _score(sketches, reference, f"real {s1} px birds upsampled"),
        _score(refined(G, sketches, text, seed), reference, f"Stage-II on real {s1} px birds"),
    ]  # fmt: skip
    for std in noise:
        rows.append(_score(refined(G, speckled(sketches, std, seed), text, seed), reference,
                           f"Stage-II on real {s1} px birds + noise {std:g}"))  # fmt: skip
    for source in sources:
        if source == CHAPTER2:  # chapter 2's birds as they are, then shrunk into sketches
            birds = chapter2_birds(captions, encoder, seed, world)
            rows.append(_score(birds, reference, f"{CHAPTER2} itself"))
            sketched = chapter.shrink(birds, s1)
        else:
            sketched = sketches_from(source, captions, s1, encoder, seed)
        rows.append(_score(refined(G, sketched, text, seed), reference, f"Stage-II on {source}"))
    rows += [
        _score(real_birds(n, SELECTION_SPLIT, size, **kwargs), reference,
               f"real {size} px birds upsampled"),
        _score(chapter.generate(G, captions, seed, encoder), reference, "Stage-II on its Stage-I"),
    ]  # fmt: skip
    if untrained:
        fresh = untrained_like(G, meta, seed)
        rows.append(_score(chapter.generate(fresh, captions, seed, encoder), reference,
                           "untrained Stage-II on its Stage-I"))  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ganlab.experiments.stage2_on_real",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("weights", nargs="?", help="a Stage-II generator (default: the shipped one)")
    p.add_argument("--n", type=int, default=500, help="birds per set (default 500)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--untrained", action="store_true", help="add the untrained Stage-II row")
    p.add_argument(
        "--noise", type=float, nargs="+", default=(), metavar="S",
        help="add rows for the real sketches with Gaussian pixel noise of each std S",
    )  # fmt: skip
    p.add_argument(
        "--sketches-from", nargs="+", default=(), metavar="SOURCE",
        help=f"add rows for Stage-II on other sketches of the same captions: Stage-I weights, "
        f"or {CHAPTER2} (chapter 2's shipped birds shrunk to the sketch's size)",
    )  # fmt: skip
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    try:
        check_count(args.n, "--n", minimum=2)
        for std in args.noise:
            if not 0 <= std < float("inf"):
                raise ValueError(f"--noise: each std must be finite and >= 0, got {std}")
        rows = measure(
            args.weights, args.n, args.seed, args.untrained, tuple(args.noise),
            tuple(args.sketches_from),
        )  # fmt: skip
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{'':40s} {'FD':>7s} {'mean':>7s} {'cov':>7s}")
    for r in rows:
        print(f"{r['label']:40s} {r['fd']:7.1f} {r['fd_mean']:7.1f} {r['fd_covariance']:7.1f}")
    print(f"judge FD at {JUDGE_SIZE} px, n = {args.n} training birds ({args.n}..{2 * args.n - 1})"
          f" against the first {args.n}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"n": args.n, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
