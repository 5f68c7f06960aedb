"""The GPU check (maintainers): every chapter's ``gpu`` recipe on a CUDA device.

Run it where a GPU is: ``python scripts/gpu_check.py --out DIR [--budget SECONDS]``. For each
chapter it times the training step of the ``gpu`` profile's recipe, as ``ganlab bench``
does, in up to four variants, and writes one JSON line per measurement to
``DIR/gpu_check.jsonl`` as soon as it is made (a run cut short keeps what it measured):

1. ``eager``: bf16 autocast on, no ``torch.compile`` (the baseline);
2. ``fp32``: autocast off (what bf16 buys);
3. ``syncs``: the eager step under ``torch.cuda.set_sync_debug_mode("warn")``: the host
   syncs the step makes, with the line that made each (the loop's own log at the last step
   is one, expected);
4. ``compile``: the profile's own setting, ``torch.compile`` on (warm-up includes compilation;
   its seconds are reported as ``warmup_seconds``);
5. ``profile`` (not run by default): ``torch.profiler`` over eager steps, the ops by self
   CPU and by self CUDA time, written to ``DIR/profile_CHAPTER.txt``.

The training data are cut to ``--n-data`` images (default 512): the bench needs batches, not
the profile's full training set, whose drawing would cost minutes of device time. Passes run
each variant for every chapter in turn, and stop starting new measurements once
``--budget`` seconds have passed (or at ``--deadline``, a unix time, across a series of runs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
import traceback
import warnings
from pathlib import Path

import torch

from ganlab.chapters import CHAPTERS, get_chapter
from ganlab.cli import _parse
from ganlab.train.bench import bench_recipe

DATA_FIELDS = ("n_faces", "n_birds", "n_train")  # the recipes' training-set sizes


def gpu_recipe(name: str, n_data: int, **loop):
    """The chapter's bench recipe and loop config in the gpu profile, data cut to ``n_data``."""
    chapter = get_chapter(name)
    args = _parse(["bench", name, "--profile", "gpu"])
    recipe, cfg = chapter.bench_recipe("gpu", args)
    cut = {
        f.name: min(getattr(recipe, f.name), n_data)
        for f in dataclasses.fields(recipe)
        if f.name in DATA_FIELDS and isinstance(getattr(recipe, f.name), int)
    }
    recipe = dataclasses.replace(recipe, **cut)
    for key, value in loop.items():
        setattr(cfg, key, value)
    return chapter, recipe, cfg


def measure(name: str, variant: str, n_data: int, device: str = "cuda") -> dict:
    compile_, amp = {"eager": (False, True), "fp32": (False, False), "compile": (True, True)}[
        variant
    ]
    chapter, recipe, cfg = gpu_recipe(name, n_data, compile=compile_, amp=amp)
    timed, warmup = chapter.bench_steps
    start = time.perf_counter()
    result = bench_recipe(recipe, cfg, device, timed, warmup, type(recipe).__name__, "gpu")
    result["warmup_seconds"] = round(time.perf_counter() - start - result["seconds"], 2)
    if device == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return result


def count_syncs(name: str, n_data: int) -> dict:
    """Host syncs in eager steps: warnings of the sync debug mode, by source line."""
    from ganlab.train.loop import Trainer

    chapter, recipe, cfg = gpu_recipe(name, n_data, compile=False, amp=True, progress=False)
    cfg.steps = 2
    trainer = Trainer(recipe, cfg, device="cuda")
    trainer.fit()  # warm-up, not counted
    cfg.steps = 5
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    where: dict[str, int] = {}
    for w in caught:
        if "synchroniz" not in str(w.message):
            continue
        key = f"{w.filename}:{w.lineno}"  # the Python line that called the syncing op
        where[key] = where.get(key, 0) + 1
    return {"chapter": name, "variant": "syncs", "steps": 3, "syncs": where}


def profile_steps(name: str, n_data: int, out: Path) -> dict:
    """Where an eager step's time goes: the profiler's op tables, to a text file."""
    from torch.profiler import ProfilerActivity, profile

    from ganlab.train.loop import Trainer

    chapter, recipe, cfg = gpu_recipe(name, n_data, compile=False, amp=True, progress=False)
    cfg.steps = 3
    trainer = Trainer(recipe, cfg, device="cuda")
    trainer.fit()  # warm-up, not profiled
    cfg.steps = 6
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        trainer.fit()
    table = prof.key_averages()
    path = out / f"profile_{name}.txt"
    path.write_text(
        "\n".join(
            table.table(sort_by=key, row_limit=25, max_name_column_width=60)
            for key in ("self_cpu_time_total", "self_cuda_time_total")
        )
    )
    return {"chapter": name, "variant": "profile", "steps": 3, "file": path.name}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--budget", type=float, default=480.0, help="seconds; no new run after")
    p.add_argument("--deadline", type=float, help="unix time; no new run after (for a series)")
    p.add_argument("--n-data", type=int, default=512)
    p.add_argument("--chapters", nargs="*", default=list(CHAPTERS))
    p.add_argument("--variants", nargs="*", default=["eager", "fp32", "syncs", "compile"])
    p.add_argument("--device", default="cuda", help="cpu: try this script's logic here")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: the GPU check needs one", file=sys.stderr)
        return 2
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / "gpu_check.jsonl"
    deadline = args.deadline or time.time() + args.budget
    where = torch.cuda.get_device_name() if args.device == "cuda" else args.device
    print(f"{where} | torch {torch.__version__}", flush=True)
    for variant in args.variants:
        for name in args.chapters:
            if time.time() > deadline:
                print(f"budget spent: {variant} {name} not run", flush=True)
                continue
            start = time.perf_counter()
            try:
                if variant == "syncs":
                    row = count_syncs(name, args.n_data)
                elif variant == "profile":
                    row = profile_steps(name, args.n_data, out)
                else:
                    row = {"variant": variant, **measure(name, variant, args.n_data, args.device)}
            except Exception as exc:  # one chapter's failure must not hide the others
                row = {"chapter": name, "variant": variant, "error": repr(exc)[:2000]}
                traceback.print_exc()
            row["wall_seconds"] = round(time.perf_counter() - start, 2)
            if args.device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            brief = {k: row.get(k) for k in ("images_per_second", "warmup_seconds", "error")}
            print(name, variant, brief, row.get("syncs", ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
