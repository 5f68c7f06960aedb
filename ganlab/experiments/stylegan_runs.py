r"""StyleGAN's cpu-config runs, measured alike: the table behind the ``cpu`` profile's R1 gamma.

Each row is one trained generator (exported weights or a checkpoint; a checkpoint gives its
EMA copy), measured three ways:

* **judge Frechet distance** of n samples (psi 1) against n real test faces, with the
  ladder's real-vs-real, half- and quarter-resolution rungs (:mod:`ganlab.evaluation.faces`);
* **diversity**: the course's perceptual distance (the LPIPS stand-in) over n / 2 disjoint
  pairs of samples (:func:`ganlab.chapters.stylegan.diversity`), beside real faces' (stored
  once per table);
* **w dims**: the participation ratio of w = f(z) over 4,000 z
  (:func:`ganlab.metrics.diversity.participation_ratio`): how many directions the mapping
  network's output spreads along.

The stored table, ``book/figures/stylegan_runs.json``, is printed by lecture 6 (section 6).
Its rows were made with, for example::

    ganlab train stylegan --profile cpu --steps 3000 --r1-gamma 10 --out runs/sg_g10
    python -m ganlab.experiments.stylegan_runs --label "gamma 10" \
        --weights runs/sg_g10/generator.safetensors \
        --command "ganlab train stylegan --profile cpu --steps 3000 --r1-gamma 10 --out runs/sg_g10"

A row with an existing label is replaced; the others are kept.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from ganlab.chapters import stylegan as chapter
from ganlab.experiments import runs_table
from ganlab.metrics.diversity import participation_ratio

TABLE = Path(__file__).resolve().parents[2] / "book" / "figures" / "stylegan_runs.json"
W_SAMPLES = 4000


@torch.no_grad()
def measure(weights, n: int = 1000) -> dict:
    """One row's measurements of the generator in ``weights`` (n samples and real faces)."""
    G, meta = chapter.load_generator(weights)
    G = G.eval()
    fd = chapter.CHAPTER.evaluate_generator(G, meta, n, 0)["frechet_distance"]
    z = torch.randn(W_SAMPLES, G.z_dim, generator=torch.Generator().manual_seed(0))
    cfg = meta["config"]
    return {
        "steps": meta.get("step") or meta["manifest"]["steps"],
        "resolution": G.resolution,
        "r1_gamma": cfg["r1_gamma"],
        "mapping_layers": cfg["mapping_layers"],
        "mapping_lr_mul": cfg.get("mapping_lr_mul", chapter.M.MAPPING_LR_MUL),
        "frechet_distance": fd["value"],
        "n": n,
        "real_vs_real": fd["real_vs_real"],
        "real_half": fd["real_half"],
        "real_quarter": fd["real_quarter"],
        "diversity": chapter.diversity(chapter.generate(G, n, 1)),
        "diversity_pairs": n // 2,
        "w_participation": participation_ratio(G.mapping(z)),
        "w_n": W_SAMPLES,
    }


def add_row(table: Path, label: str, weights, command: str, note: str = "", n: int = 1000):
    """Measure ``weights`` and write its row (replacing one of the same label) into ``table``;
    real faces' diversity is measured once, at the first row's n and resolution. -> the row."""
    from ganlab.evaluation.faces import real_faces

    doc = runs_table.read(table)
    row = {"label": label, "path": str(weights), "command": command, "note": note}
    row |= measure(weights, n)
    if "real" not in doc:
        faces = real_faces(n, "test", size=max(row["resolution"], 16))
        doc["real"] = {"diversity": chapter.diversity(faces), "n": n}
    return runs_table.write_row(table, doc, row)


def main(argv: list[str] | None = None) -> int:
    return runs_table.main(
        sys.modules[__name__], "a StyleGAN", "samples and real faces", 1000, argv
    )


if __name__ == "__main__":
    raise SystemExit(main())
