r"""StarGAN v2's cpu-config runs, measured alike: the length study and the ablation (Table 1).

Each row is one trained translator (exported weights or a checkpoint; a checkpoint gives its
EMA copy), measured by the paper's protocol
(:func:`ganlab.chapters.stargan_v2.evaluate_translation`: every source domain != target, ``n``
held-out sources per domain, 10 outputs each) in both modes, latent- and reference-guided:

* **mean FD**: the face judge's Frechet distance per target domain, averaged over the three;
* **diversity**: the course's perceptual distance among one source's 10 outputs;
* **domain accuracy**: how often the judge reads the target domain (chance 1/3);
* **yaw r**: the correlation of the output's yaw with its source's (the pose kept; a model
  that ignores its source scores about 0);
* **source dependence** (once per row): how much G's output varies with its source under one
  style, over the sources' own variance (:func:`ganlab.chapters.stargan_v2.source_dependence`;
  0: a template whatever the source).

The stored table, ``book/figures/stargan_v2_runs.json``, is printed by lecture 8 (sections 12
and 13). Its rows were made with, for example::

    ganlab train stargan-v2 --profile cpu --steps 3000 --lambda-cyc 0 --out runs/sv2_nocyc
    python -m ganlab.experiments.stargan_runs --label "without cycle" \
        --weights runs/sv2_nocyc/generator.safetensors \
        --command "ganlab train stargan-v2 --profile cpu --steps 3000 --lambda-cyc 0 ..."

A row with an existing label is replaced; the others are kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ganlab.chapters import stargan_v2 as chapter
from ganlab.experiments import runs_table

TABLE = Path(__file__).resolve().parents[2] / "book" / "figures" / "stargan_v2_runs.json"
MODES = ("latent", "reference")
SOURCE_DEPENDENCE_N = 64  # held-out cats, one style (:func:`chapter.source_dependence`)


@torch.no_grad()
def measure(weights, n: int = 50) -> dict:
    """One row's measurements of the translator in ``weights`` (``n`` sources per domain)."""
    T, meta = chapter.load_translator(weights)
    cfg = meta["config"]
    result = chapter.evaluate_translation(T.eval(), n=n, seed=0, modes=MODES)
    row = {
        "steps": meta.get("step") or meta["manifest"]["steps"],
        "size": T.img_size,
        "repeat_num": T.generator.repeat_num,  # G's down/up blocks
        "bottleneck_px": T.img_size // 2**T.generator.repeat_num,
        **{k: cfg[k] for k in ("lambda_ds", "lambda_sty", "lambda_cyc", "lambda_reg")},
        "n_sources_per_domain": n,
        "source_dependence": chapter.source_dependence(T, SOURCE_DEPENDENCE_N),
        "source_dependence_n": SOURCE_DEPENDENCE_N,
    }
    for mode in MODES:
        r = result[mode]
        yaw = r["pose_preservation"]["yaw"]
        row[mode] = {
            "mean_fd": r["mean_fd"],
            "frechet_distance": {d: v["value"] for d, v in r["frechet_distance"].items()},
            "real_vs_real": {d: v["real_vs_real"] for d, v in r["frechet_distance"].items()},
            "diversity": r["diversity"],
            "domain_accuracy": r["domain_accuracy"],
            "chance": r["chance"],
            "yaw_correlation": yaw["correlation"],
            "n_outputs": r["n_outputs"],
        }
    return row


def add_row(table: Path, label: str, weights, command: str, note: str = "", n: int = 50):
    """Measure ``weights`` and write its row (replacing one of the same label) into
    ``table``, atomically. -> the row."""
    doc = runs_table.read(table)
    row = {"label": label, "path": str(weights), "command": command, "note": note}
    row |= measure(weights, n)
    return runs_table.write_row(table, doc, row)


def format_table(doc: dict) -> str:
    """The stored rows as the lecture prints them: one line per run and mode."""
    w = max([len("run"), *(len(r["label"]) for r in doc["rows"])])
    head = f"{'run':{w}s} {'steps':>6s} {'src dep':>7s} {'mode':>9s} {'mean FD':>8s} "
    head += f"{'divers.':>8s} {'dom. acc':>8s} {'yaw r':>6s}"
    lines = [head]
    for r in doc["rows"]:
        for mode in MODES:
            m = r[mode]
            first = mode == MODES[0]
            name, dep = (r["label"], f"{r['source_dependence']:7.3f}") if first else ("", "")
            lines.append(
                f"{name:{w}s} {r['steps']:6d} {dep:>7s} {mode:>9s} {m['mean_fd']:8.1f} "
                f"{m['diversity']:8.3f} {m['domain_accuracy']:8.3f} {m['yaw_correlation']:6.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    return runs_table.main(sys.modules[__name__], "a StarGAN v2", "sources per domain", 50, argv)


if __name__ == "__main__":
    raise SystemExit(main())
