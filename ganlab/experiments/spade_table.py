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

Run (single-threaded; about 4 CPU-minutes per run at the cpu profile's ngf 12: the stored
table has 700 SPADE steps in 230 CPU-s and 1,000 baseline steps in 226 CPU-s)::

    OMP_NUM_THREADS=1 python -m ganlab.experiments.spade_table train spade --steps 700
    OMP_NUM_THREADS=1 python -m ganlab.experiments.spade_table train baseline --steps 1000
    python -m ganlab.experiments.spade_table measure --n 500
    (or, in parallel, measure --n 500 --only NAME for each run, then merge)
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
SHIPPED_RUN = Path("runs/spade_cpu")  # ganlab train spade --profile cpu --out runs/spade_cpu


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


def stopped_record(which: str, root: Path = RUNS, logs: Path = Path("runs/logs")) -> dict:
    """The train record of a run stopped by Ctrl-C before its last step (no cpu.json): the
    checkpoint's step and wall seconds, and the CPU seconds that ``/usr/bin/time -v`` wrote
    to its log (``LOGS/table_WHICH.log``)."""
    import re

    meta = json.loads((root / which / "checkpoint.json").read_text())
    log = (logs / f"table_{which}.log").read_text()
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", log).group(1))
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", log).group(1))
    return {"steps": meta["step"], "cpu_s": round(user + system, 1),
            "wall_s": round(meta["seconds"], 1), "threads": 1,
            "stopped": "by Ctrl-C at the same wall-clock time as the other run"}  # fmt: skip


def shipped_record(meta: dict, logs: Path = Path("runs/logs")) -> dict:
    """The shipped run's steps and wall seconds (its manifest) and CPU seconds: the sum of
    ``/usr/bin/time -v`` over the logs of its parts (``LOGS/spade_cpu*.log``; the run was
    stopped and resumed on a busy machine), when they are here."""
    import re

    record = {"steps": meta["manifest"]["steps"], "wall_s": meta["manifest"]["seconds"]}
    cpu = 0.0
    for log in sorted(logs.glob("spade_cpu*.log")):
        text = log.read_text()
        for key in ("User", "System"):
            found = re.search(key + r" time \(seconds\): ([\d.]+)", text)
            cpu += float(found.group(1)) if found else 0.0
    if cpu:
        record["cpu_s"] = round(cpu, 1)
    return record


def measure(
    n: int = 500, root: Path = RUNS, out: Path = OUT, shipped: bool = True, only=None
) -> dict:
    """The landscapes protocol on both runs (and the shipped VAE weights): one JSON. With
    ``only`` (a run's name) just that run, into OUT's folder as ``spade_table.NAME.json``
    (``merge`` joins them: the runs can be measured in parallel)."""
    from ganlab.chapters.spade import CHAPTER, generate, image_size
    from ganlab.evaluation.landscapes import evaluate_map_to_image

    runs = {}
    for k in ("spade", "baseline"):  # a stopped run: its last checkpoint
        exported = root / k / "generator.safetensors"
        runs[k] = exported if exported.exists() else root / k / "checkpoint.safetensors"
    if shipped:  # the shipped weights, or the run they were shipped from (the same tensors)
        run_file = SHIPPED_RUN / "generator.safetensors"
        runs["spade_vae_shipped"] = run_file if run_file.exists() else None
    if only is not None:
        runs = {only: runs[only]}
        out = out.with_name(f"{out.stem}.{only}.json")
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
        cpu = None
        if path is not None and name != "spade_vae_shipped":
            cpu_file = path.parent / "cpu.json"
            cpu = (json.loads(cpu_file.read_text()) if cpu_file.exists()
                   else stopped_record(path.parent.name, root))  # fmt: skip
        result["runs"][name] = {
            "weights": "shipped: ganlab/weights/spade.safetensors"
            if name == "spade_vae_shipped"
            else str(path),
            "train": cpu or shipped_record(meta),
            "config": meta["config"],
            "eval_seconds": round(time.perf_counter() - t0, 1),
            **metrics,
        }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    return result


def merge(out: Path = OUT, names=("spade", "baseline", "spade_vae_shipped")) -> dict:
    """Join the per-run JSONs of ``measure --only`` into OUT (and remove them)."""
    parts = [out.with_name(f"{out.stem}.{k}.json") for k in names]
    parts = [p for p in parts if p.exists() or p.stem.endswith(("spade", "baseline"))]
    docs = [json.loads(p.read_text()) for p in parts]
    if len({d["n"] for d in docs}) != 1:
        raise ValueError(f"the parts measured different n: {[d['n'] for d in docs]}")
    result = {"n": docs[0]["n"], "runs": {k: v for d in docs for k, v in d["runs"].items()}}
    out.write_text(json.dumps(result, indent=1) + "\n")
    for p in parts:
        p.unlink()
    return result


FIGURE = Path("book/figures/spade_painted.png")


def figure(out: Path = FIGURE) -> Path:
    """The painted-map figure of the shipped weights (the website's static view of the
    lecture's map painter): the hand-painted map, G's picture of it in four reference
    styles, and in three random styles."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ganlab.chapters.spade import CHAPTER, image_size, painted_figure
    from ganlab.data.landscapes import Style, painted_map

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
    m.add_argument("--only", choices=("spade", "baseline", "spade_vae_shipped"))
    sub.add_parser("merge")
    sub.add_parser("figure")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "figure":
        print(f"wrote {figure()}")
    elif args.command == "merge":
        print(json.dumps(merge(), indent=1))
    elif args.command == "train":
        print(json.dumps(train(args.which, args.steps)))
    else:
        print(json.dumps(measure(args.n, shipped=not args.no_shipped, only=args.only), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
