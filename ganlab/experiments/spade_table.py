r"""SPADE against its baseline at the same CPU time (the paper's Table 1 claim), and multi-modal
diversity with and without the encoder, on the landscapes world at the ``cpu`` profile's sizes.

Two runs of the chapter's own trainer (:mod:`ganlab.chapters.spade`), each given about the
same CPU time on one thread, differing only in G:

* ``spade``: :class:`~ganlab.models.spade.SPADEGenerator` without the encoder (the map
  reaches every normalisation layer through SPADE);
* ``baseline``: :class:`~ganlab.models.spade.InputMapGenerator` (the map only at the input,
  ordinary BatchNorm after it: pix2pixHD's design at SPADE's widths).

Same D, losses, TTUR, decay and data. The steps per run are set from the measured CPU time
per step (the baseline's G is cheaper, so it takes more steps in the same time). Then both,
and the shipped ``spade`` weights (VAE mode, with the encoder), are measured with the
landscapes protocol (:func:`ganlab.evaluation.landscapes.evaluate_map_to_image`); the JSON
goes to ``book/data/spade_table.json`` (the lecture reads it).

Run (single-threaded; about 10 CPU-minutes per run)::

    OMP_NUM_THREADS=1 python -m ganlab.experiments.spade_table train spade --steps 730
    OMP_NUM_THREADS=1 python -m ganlab.experiments.spade_table train baseline --steps 1220
    python -m ganlab.experiments.spade_table measure --n 500
    python -m ganlab.experiments.spade_table figure   # book/figures/spade_painted.png
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

RUNS = Path("runs/spade_table")
OUT = Path("book/data/spade_table.json")


def train(which: str, steps: int, root: Path = RUNS) -> dict:
    """Train run ``which`` (spade | baseline) for ``steps`` at the cpu profile's sizes;
    writes ROOT/WHICH/generator.safetensors and cpu.json (CPU and wall seconds)."""
    from ganlab.chapters.commands import export_generator
    from ganlab.chapters.spade import CHAPTER, recipe_and_config
    from ganlab.train.loop import Trainer

    out = root / which
    overrides = {"use_vae": False} if which == "spade" else {"variant": "baseline"}
    recipe, cfg = recipe_and_config(
        "cpu", steps=steps, out=str(out), resume=True, progress=False, **overrides
    )
    trainer = Trainer(recipe, cfg, device="cpu")
    cpu_file = out / "cpu.json"
    before = json.loads(cpu_file.read_text()) if cpu_file.exists() else {"cpu_s": 0, "wall_s": 0}
    c0, w0 = time.process_time(), time.perf_counter()
    trainer.fit()
    record = {
        "steps": steps,
        "cpu_s": round(before["cpu_s"] + time.process_time() - c0, 1),
        "wall_s": round(before["wall_s"] + time.perf_counter() - w0, 1),
        "threads": torch.get_num_threads(),
    }
    cpu_file.write_text(json.dumps(record) + "\n")
    export_generator(CHAPTER, trainer, out / "generator.safetensors", {"variant": which, **record})
    return record


def measure(n: int = 500, root: Path = RUNS, out: Path = OUT, shipped: bool = True) -> dict:
    """The landscapes protocol on both runs (and the shipped VAE weights): one JSON."""
    from ganlab.chapters.spade import CHAPTER, generate, image_size
    from ganlab.evaluation.landscapes import evaluate_map_to_image

    runs = {k: root / k / "generator.safetensors" for k in ("spade", "baseline")}
    if shipped:
        runs["spade_vae_shipped"] = None
    result = {"n": n, "runs": {}}
    for name, path in runs.items():
        G, meta = CHAPTER.load(path)
        t0 = time.perf_counter()
        metrics = evaluate_map_to_image(
            lambda labels, s, style_images=None, G=G: generate(G, labels, s, style_images),
            n=n,
            size=image_size(G),
            multimodal=G.use_vae,
            diversity=True,
        )
        cpu = json.loads((path.parent / "cpu.json").read_text()) if path else None
        result["runs"][name] = {
            "weights": str(path) if path else "shipped: ganlab/weights/spade.safetensors",
            "train": cpu or {k: meta["manifest"].get(k) for k in ("steps", "cpu_seconds")},
            "config": meta["config"],
            "eval_seconds": round(time.perf_counter() - t0, 1),
            **metrics,
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


FIGURE = Path("book/figures/spade_painted.png")


def figure(out: Path = FIGURE) -> Path:
    """The painted-map figure of the shipped weights (the website's static view of the
    lecture's map painter): the hand-painted map, G's picture of it in four reference
    styles, and in three random styles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganlab.chapters.spade import CHAPTER, image_size
    from ganlab.data.landscapes import Style, painted_map
    from ganlab.viz.landscapes import painted_figure

    G, _ = CHAPTER.load()
    styles = [Style("morning", "spring"), Style("noon", "summer"), Style("evening", "autumn"),
              Style("overcast", "winter")]  # fmt: skip
    fig = painted_figure(G, painted_map(image_size(G)), styles, seeds=3,
                         title="SPADE (shipped): a painted map, in four reference styles and "
                         "three random ones")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m ganlab.experiments.spade_table")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("which", choices=("spade", "baseline"))
    t.add_argument("--steps", type=int, required=True)
    m = sub.add_parser("measure")
    m.add_argument("--n", type=int, default=500)
    m.add_argument("--no-shipped", action="store_true")
    sub.add_parser("figure")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "figure":
        print(f"wrote {figure()}")
    elif args.command == "train":
        print(json.dumps(train(args.which, args.steps)))
    else:
        print(json.dumps(measure(args.n, shipped=not args.no_shipped), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
