r"""What holds a text-to-image run's Frechet distance: the FD's two parts and per-caption
diversity, snapshot by snapshot.

For each snapshot of a run (``ganlab train CHAPTER --snapshot-every N``) it prints:

* **FD**, the score ``ganlab ship --pick-snapshot`` picks by (judge features, ``n`` captions
  of the training split, one image each), and its two parts
  (:func:`ganlab.metrics.frechet_distance_terms`): **mean**, how far the average generated
  bird is from the average real one, and **cov**, how their spread differs;
* **diversity**: per-caption diversity (the mean pairwise judge-feature distance of 16
  samples of each of 50 test captions, and the same in pixels), as the manifests record it,
  beside real birds matching the same captions.

A run whose FD stops falling while its ``cov`` part stays high and its diversity falls is
losing variety per caption, not drawing worse birds. Chapter 4's cpu run is one (its
chapter module, above ``PROFILES``). Example::

    python -m ganlab.experiments.caption_runs attngan runs/attn --steps 1000 3000 5000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ganlab.chapters import get_chapter
from ganlab.chapters.commands import snapshots
from ganlab.evaluation.birds import SELECTION_SPLIT
from ganlab.validation import check_count


def step_of(path: Path) -> int:
    """``generator_step001250.safetensors`` -> 1250."""
    return int(path.stem.removeprefix("generator_step"))


def measure(chapter, path, n: int, captions: int, per_caption: int) -> tuple[dict, dict]:
    """One snapshot's row (its steps, training-split FD with its parts, diversity) and real
    birds' diversity on the same captions."""
    G, meta = chapter.load(path)
    fd = chapter.selection_score(G, meta, n)  # what ganlab ship --pick-snapshot reads
    div = chapter.caption_diversity(G, meta, captions, per_caption)  # as the manifests do
    row = {
        "steps": meta["manifest"]["steps"],
        "n": n,
        "fd": fd["frechet_distance"],
        "fd_mean": fd["fd_mean"],
        "fd_covariance": fd["fd_covariance"],
        "diversity": div["model"]["judge_features"],
        "diversity_pixels": div["model"]["pixels"],
    }
    return row, div["real"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ganlab.experiments.caption_runs",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("chapter", help="a text-to-image chapter: gan-int-cls or attngan")
    p.add_argument("run", help="a run folder with snapshots/")
    p.add_argument("--steps", type=int, nargs="+", help="only these snapshots (default: all)")
    p.add_argument("--n", type=int, default=500, help="training captions for the FD")
    p.add_argument("--captions", type=int, default=50, help="test captions for diversity")
    p.add_argument("--per-caption", type=int, default=16, help="samples per caption")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args(argv)
    try:
        chapter = get_chapter(args.chapter)
        for value, name in ((args.n, "--n"), (args.captions, "--captions")):
            check_count(value, name, minimum=2)
        check_count(args.per_caption, "--per-caption", minimum=2)
        paths = snapshots(args.run)
        if args.steps:
            paths = [q for q in paths if step_of(q) in set(args.steps)]
            missing = sorted(set(args.steps) - {step_of(q) for q in paths})
            if missing:
                raise ValueError(f"{args.run} has no snapshot at step(s) {missing}")
        if not paths:
            raise ValueError(f"{args.run} has no snapshots/ (train with --snapshot-every N)")
    except (ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    rows = []
    print(f"{'steps':>7s} {'FD':>8s} {'mean':>7s} {'cov':>7s} {'diversity':>10s} {'pixels':>7s}")
    for path in paths:
        r, real = measure(chapter, path, args.n, args.captions, args.per_caption)
        rows.append(r)
        print(f"{r['steps']:7d} {r['fd']:8.1f} {r['fd_mean']:7.1f} {r['fd_covariance']:7.1f}"
              f" {r['diversity']:10.2f} {r['diversity_pixels']:7.1f}", flush=True)  # fmt: skip
    print(f"real birds: diversity {real['judge_features']:.2f}, pixels {real['pixels']:.1f} "
          f"({args.captions} captions x {args.per_caption}); FD: n = {args.n} "
          f"{SELECTION_SPLIT}-split captions")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "real": real}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
