r"""PGGAN's claim, measured: growing from 4x4 against training at full size from the start,
the same model, the same CPU time (Karras et al. 2018, Sec. 2 and Fig. 4: growing reaches a
given quality sooner and trains more stably).

Both runs use chapter 5's ``cpu`` profile model (same widths, loss, optimiser, batch, data);
the only difference is ``start_level``: 0 grows 4 -> 8 -> 16 -> 32 px with fade-ins, the last
level (the official ``-nogrowing``) trains at 32 px from step 0. Each run gets the same
budget of CPU seconds (``time.process_time``, one thread): the fixed run simply trains until
the budget is spent; the growing run's length (its schedule depends on it) is planned from
the measured cost of one step at every level, and it also stops at the budget. Snapshots of
G's EMA are written at every tenth of the budget.

``evaluate`` measures every snapshot with the faces protocol (:mod:`ganlab.evaluation.faces`:
face-judge Frechet distance against real faces at 32 px, and SWD per Laplacian level with the
real-vs-real baseline), at ``n`` samples each, and writes the JSON and the figure the lecture
shows. A growing run's early snapshots draw 4, 8 or 16 px images: they are measured as they
are (the judge and SWD upsample them to 32 px), which is what "quality over time" means.

Re-run (about 8 CPU-minutes per run, plus the evaluation)::

    OMP_NUM_THREADS=1 python -m ganlab.experiments.pggan_growing train --out runs/pggan_growing
    python -m ganlab.experiments.pggan_growing evaluate --run runs/pggan_growing \
        --json book/figures/pggan_growing.json --figure book/figures/pggan_growing.png
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ganlab.chapters import pggan as chapter
from ganlab.models import pggan as M
from ganlab.train import checkpoint as ckpt
from ganlab.train.export import load_generator, save_generator
from ganlab.train.loop import Trainer

RUNS = {"growing": 0, "fixed": None}  # start_level (None: the last level)
SNAPSHOTS = 10  # default; ``--snapshots``


def step_costs(profile: str = "cpu", steps: int = 8, warmup: int = 3) -> dict[int, float]:
    """CPU seconds of one training step at every level: the median of ``steps`` timed steps
    after ``warmup`` untimed ones (the first steps of a fresh trainer allocate, and cost
    several times a later one)."""
    import statistics

    settings = chapter.PROFILES[profile].model
    costs = {}
    for level in range(M.level_of(settings.resolution) + 1):
        # a very long planned run keeps the schedule at ``level`` for the measured steps
        # (a short run would grow to the top level within them)
        recipe, cfg = chapter.recipe_and_config(
            profile, start_level=level, steps=10**6, progress=False, ema_decay=0.0
        )
        recipe.n_faces = 256
        trainer = Trainer(recipe, cfg, device="cpu")
        marks: list[float] = []

        def mark(t, marks=marks, stop=warmup + steps):
            marks.append(time.process_time())
            if t.step >= stop:
                t.cfg.steps = t.step  # stop here; the schedule still sees 10**6 steps

        trainer.fit(callback=mark)
        timed = marks[warmup - 1 :]
        costs[level] = statistics.median(b - a for a, b in zip(timed, timed[1:]))
    return costs


def planned_steps(costs: dict[int, float], budget: float, phase_share: float, top: int) -> int:
    """Steps of a growing run whose schedule costs ``budget`` CPU seconds."""
    per_step = phase_share * costs[0]  # stabilise level 0
    for level in range(1, top + 1):
        per_step += phase_share * costs[level]  # fade-in
        if level < top:
            per_step += phase_share * costs[level]  # stabilise
    per_step += (1 - phase_share * (2 * top)) * costs[top]  # the last stabilise
    return int(budget / per_step)


def train(
    out: Path, budget: float, profile: str = "cpu", only: str | None = None, snaps: int = SNAPSHOTS
) -> dict:
    costs = step_costs(profile)
    settings = chapter.PROFILES[profile].model
    top = M.level_of(settings.resolution)
    plan = {
        # 5 % longer than planned: the budget, not the plan, ends the run (a step cost
        # measured on 3 steps is only an estimate)
        "growing": int(1.05 * planned_steps(costs, budget, settings.phase_share, top)),
        "fixed": int(budget / costs[top]) + 1,
    }
    print(f"step costs (CPU s) by level: {costs}; planned steps: {plan}")
    for name, start in RUNS.items():
        if not only or name == only:
            start = top if start is None else start
            run_one(out / name, profile, start, plan[name], budget, costs[start], snaps)
    return {"costs": costs, "plan": plan}


def run_one(
    folder: Path, profile: str, start: int, steps: int, budget: float, first: float, snaps: int
):
    """One run from ``start_level`` for ``steps`` steps or ``budget`` CPU seconds, whichever
    ends first; G's EMA saved at every tenth of the budget (``first``: one step's cost)."""
    folder.mkdir(parents=True, exist_ok=True)
    recipe, cfg = chapter.recipe_and_config(profile, start_level=start, steps=steps, progress=False)
    trainer = Trainer(recipe, cfg, device="cpu")
    clock = {"start": None, "next": 0, "last": None}
    spec = recipe.generator_spec()

    def snapshot(t: Trainer, cpu: float) -> None:
        state = recipe.schedule(cfg.steps)(t.step - 1)
        meta = {
            "chapter": "pggan",
            "config": recipe.config(),
            "snapshot": {
                "step": t.step,
                "cpu_seconds": round(cpu, 2),
                "level": state.level,
                "alpha": state.alpha,
            },
        }
        path = folder / f"snap_{clock['next']:02d}.safetensors"
        save_generator(path, t.generator(), spec, meta)
        clock["next"] += 1
        clock["last"] = t.step

    def callback(t: Trainer) -> None:
        now = time.process_time()
        if clock["start"] is None:
            clock["start"] = now - first  # the first step's cost
        cpu = now - clock["start"]
        if cpu >= clock["next"] * budget / snaps:
            snapshot(t, cpu)
        if cpu >= budget:
            t.cfg.steps = t.step  # stop: the budget is spent

    trainer.fit(callback=callback)
    if clock["last"] != trainer.step:  # the plan ended before the budget: keep the final G
        snapshot(trainer, time.process_time() - clock["start"])
    result = {"steps": trainer.step, "planned": steps, "history": trainer.history}
    (folder / "run.json").write_text(json.dumps(result))


def evaluate(run: Path, n: int = 500) -> dict:
    from ganlab.evaluation.faces import evaluate_faces

    out = {"n": n, "runs": {}}
    for name in RUNS:
        snaps = []
        for path in sorted((run / name).glob("snap_*.safetensors")):
            G, meta = load_generator(path, "pggan")
            s = meta["snapshot"]

            def generate(count, seed, G=G, s=s):
                return chapter.generate(G, count, seed, s["level"], s["alpha"])

            size = M.resolution_of(G.max_level)
            result = evaluate_faces(generate, n=n, size=size, seed=0, swd=True)
            snaps.append(
                {
                    **s,
                    "frechet_distance": result["frechet_distance"]["value"],
                    "swd": result["swd"]["generated"],
                    "ladder": {k: v for k, v in result["frechet_distance"].items() if k != "value"},
                    "swd_real_vs_real": result["swd"]["real_vs_real"],
                }
            )
            print(name, s, round(snaps[-1]["frechet_distance"], 2), snaps[-1]["swd"])
        meta = json.loads((run / name / "run.json").read_text())
        out["runs"][name] = {"snapshots": snaps, "steps": meta["steps"], "planned": meta["planned"]}
        out["config"] = ckpt.read_meta(path)["config"]
    return out


def figure(result: dict, path: Path | None = None):
    """FD and SWD (average over the pyramid levels) over CPU time for both runs, each with
    its real-data references, and the SWD per level at the end: one figure."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 3.9))
    colours = {"growing": "tab:blue", "fixed": "tab:orange"}
    last = {}
    for name, run in result["runs"].items():
        snaps = run["snapshots"]
        minutes = [s["cpu_seconds"] / 60 for s in snaps]
        label = f"{name} ({run['steps']} steps)"
        axes[0].plot(minutes, [s["frechet_distance"] for s in snaps], "o-", color=colours[name],
                     label=label)  # fmt: skip
        axes[1].plot(minutes, [s["swd"]["SWDx1e3_avg"] for s in snaps], "o-",
                     color=colours[name], label=label)  # fmt: skip
        if name == "growing":  # the resolution each snapshot drew at
            for s in snaps:
                axes[0].annotate(f"{4 * 2 ** s['level']}", (s["cpu_seconds"] / 60,
                                 s["frechet_distance"]), fontsize=7, xytext=(2, 4),
                                 textcoords="offset points")  # fmt: skip
        last[name] = snaps[-1]
    ladder = last["growing"]["ladder"]
    for rung, style in (("real_vs_real", ":"), ("real_half", "--"), ("real_quarter", "-.")):
        axes[0].axhline(ladder[rung], color="grey", ls=style, lw=1, label=rung)
    axes[0].set(xlabel="CPU minutes (1 thread)", ylabel="face-judge FD (lower is better)",
                title=f"FD over time, n = {result['n']} (labels: px drawn)",
                yscale="log")  # fmt: skip
    real_swd = last["growing"]["swd_real_vs_real"]["SWDx1e3_avg"]
    axes[1].axhline(real_swd, color="grey", ls=":", lw=1, label="real vs real")
    axes[1].set(xlabel="CPU minutes (1 thread)", ylabel="SWD x 1e3, level average",
                title="SWD over time", yscale="log")  # fmt: skip
    for ax in axes[:2]:
        ax.legend(fontsize=7)
    keys = [k for k in last["growing"]["swd"] if k != "SWDx1e3_avg"]
    width = 0.27
    for i, (name, values) in enumerate(
        [(n, last[n]["swd"]) for n in last]
        + [("real vs real", last["growing"]["swd_real_vs_real"])]
    ):
        axes[2].bar([j + (i - 1) * width for j in range(len(keys))], [values[k] for k in keys],
                    width, label=name, color=colours.get(name, "grey"))  # fmt: skip
    axes[2].set_xticks(range(len(keys)), [k.replace("SWDx1e3_", "") + " px" for k in keys])
    axes[2].set(ylabel="SWD x 1e3 (lower is better)", title="SWD per pyramid level, at the end")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganlab.experiments.pggan_growing")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train")
    p.add_argument("--out", default="runs/pggan_growing")
    p.add_argument("--budget", type=float, default=480.0, help="CPU seconds per run")
    p.add_argument("--profile", default="cpu")
    p.add_argument("--only", choices=tuple(RUNS))
    p.add_argument("--snapshots", type=int, default=SNAPSHOTS, help="G's EMA saved this often")
    p = sub.add_parser("evaluate")
    p.add_argument("--run", default="runs/pggan_growing")
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--json", default="book/figures/pggan_growing.json")
    p.add_argument("--figure", default="book/figures/pggan_growing.png")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.command == "train":
        print(
            json.dumps(train(Path(args.out), args.budget, args.profile, args.only, args.snapshots))
        )
    else:
        result = evaluate(Path(args.run), args.n)
        Path(args.json).write_text(json.dumps(result, indent=1))
        figure(result, Path(args.figure))
        print(f"wrote {args.json} and {args.figure}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
