"""The five chapter commands, written once for every chapter: train, sample, evaluate, bench
and ship. Each takes the chapter (its :class:`~ganlab.chapters.contract.Chapter`) and the
parsed command line; what differs between chapters is asked of the chapter's contract.

The JSON that ``evaluate`` and ``bench`` print, and the manifests that ``train`` and ``ship``
write, are a stable interface (teachers' scripts read their keys).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from ganlab.chapters.contract import Chapter, shipped_path
from ganlab.train import checkpoint as ckpt
from ganlab.train.export import half_precision, save_generator
from ganlab.train.loop import Trainer

SEED_MAX = 2**32 - 1  # seeds are 32-bit, as NumPy's: torch's generators take them all
MAX_PER_ROW = 64  # sample --n: images per condition (one grid row)
MAX_SAMPLES = 1024  # sample: images in one grid (a 1024-image grid of 64 px is 4 MB)


# ---------------------------------------------------------------- checks of the options
def check_seed(seed: int | None, option: str = "--seed") -> None:
    """A clear error for a seed outside 0..2**32-1 (torch would overflow on a huge one)."""
    if seed is not None and not 0 <= seed <= SEED_MAX:
        raise ValueError(f"{option} must be an integer in 0..{SEED_MAX} (2**32 - 1), got {seed}")


def check_positive(value: int | None, option: str) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{option} must be a positive integer, got {value}")


def check_image_path(out: str) -> None:
    """``--out`` must name a PNG or JPEG file: the grid is written in the format it names."""
    from ganlab.viz.grids import FORMATS

    if Path(out).suffix.lower() not in FORMATS:
        raise ValueError(
            f"--out {out!r}: expected a file ending in {', '.join(FORMATS)} "
            "(the grid is written in the format its name says)"
        )


def command_line(args: argparse.Namespace, chapter: Chapter) -> str:
    """The command as typed (what a manifest records)."""
    return " ".join(["ganlab", *getattr(args, "argv", ["train", chapter.name])])


def model_name(recipe) -> str:
    """``"cgan.ConvGenerator"``: the generator's class, as manifests and bench name it."""
    return recipe.generator_spec().cls.removeprefix("ganlab.models.")


# ---------------------------------------------------------------- train
def export_generator(chapter: Chapter, trainer: Trainer, path, manifest: dict) -> Path:
    """Write the run's (EMA) generator with its spec, config and manifest (see
    :mod:`ganlab.train.export`); the chapter may first prepare it (standing statistics)."""
    G = trainer.generator("G")
    recipe = trainer.recipe
    extra = chapter.prepare_export(G, recipe, trainer.device, trainer.data)
    meta = {
        "chapter": chapter.name,
        "model": model_name(recipe),
        "config": recipe.config(),
        "manifest": {**manifest, **extra},
    }
    return save_generator(path, G, recipe.generator_spec(), meta)


SNAPSHOTS = "snapshots"  # OUT/snapshots/generator_step006000.safetensors (--snapshot-every)


def snapshot_path(out, step: int) -> Path:
    """Where ``--snapshot-every`` exports the generator of ``step``."""
    return Path(out) / SNAPSHOTS / f"generator_step{step:06d}.safetensors"


def snapshots(run) -> list[Path]:
    """A run folder's snapshots, in step order (none: [])."""
    return sorted((Path(run) / SNAPSHOTS).glob("generator_step*.safetensors"))


def train_run(chapter: Chapter, run, args, profile) -> dict:
    """Train one run, then export its generator to ``OUT/generator.safetensors``; with
    ``--snapshot-every N``, also every N steps to ``OUT/snapshots/`` (what
    ``ganlab ship --pick-snapshot`` chooses from)."""
    print(f"{chapter.name}: {json.dumps(run.recipe.config())}")
    trainer = Trainer(run.recipe, run.cfg, device=profile.device)
    every = getattr(args, "snapshot_every", None)

    def manifest_at(step: int) -> dict:
        return {
            "chapter": chapter.name,
            **run.manifest,
            "profile": profile.name,
            "command": command_line(args, chapter),
            "steps": step,
            "seconds": round(trainer.seconds, 1),  # all runs of this checkpoint, resumes included
            "device": str(trainer.device),
        }

    def snapshot(t: Trainer) -> None:
        if t.step % every == 0 and t.step < t.cfg.steps and t.dist.is_main:
            t.seconds = t.elapsed()
            export_generator(chapter, t, snapshot_path(run.cfg.out, t.step), manifest_at(t.step))
            for module in t.raw.values():  # without an EMA copy, the export set G to eval
                module.train()

    result = trainer.fit(callback=snapshot if every else None)
    weights = Path(run.cfg.out) / "generator.safetensors"
    manifest = manifest_at(result.step)
    if trainer.dist.is_main:
        export_generator(chapter, trainer, weights, manifest)
        print(f"checkpoint: {result.checkpoint}\ngenerator: {weights}")
    return {"checkpoint": result.checkpoint, "generator": str(weights), **manifest}


def train(chapter: Chapter, args: argparse.Namespace) -> dict:
    """``ganlab train CHAPTER``: every run the chapter plans, in order, into ``--out``."""
    from ganlab.profiles import get_profile

    check_positive(args.steps, "--steps")
    check_positive(getattr(args, "batch_size", None), "--batch-size")
    check_positive(getattr(args, "snapshot_every", None), "--snapshot-every")
    check_seed(args.seed)
    profile = get_profile(args.profile)
    print(profile.describe())
    out = Path(args.out or f"runs/{chapter.name}")
    common = dict(
        steps=args.steps,
        batch_size=getattr(args, "batch_size", None),  # None: the profile's
        out=str(out),
        resume=args.resume,
        seed=args.seed,
        data_root=args.data_root,
        cpu_bf16=getattr(args, "cpu_bf16", False) or None,  # None: the config's default
    )
    results: dict = {}
    for run in chapter.runs(profile.name, args, common, results):  # planned lazily: a run
        if run.folder is not None:  # may read the results of those before it
            run.cfg.out = str(out / run.folder)
        results[run.folder] = train_run(chapter, run, args, profile)
    return results[None] if list(results) == [None] else results


# ---------------------------------------------------------------- sample
def load(chapter: Chapter, args: argparse.Namespace):
    """The generator of ``--weights`` (default: the chapter's shipped weights), its meta and
    a label for JSON (``shipped:NAME`` or the path given)."""
    if args.weights:
        G, meta = chapter.load(args.weights)
        return G, meta, str(args.weights)
    name = chapter.default_weights(args)
    G, meta = chapter.load(shipped_path(name))
    return G, meta, f"shipped:{name}"


def sample(chapter: Chapter, args: argparse.Namespace) -> str:
    """``ganlab sample CHAPTER``: a grid of samples, one row per condition."""
    from ganlab.viz.grids import save_grid

    if not 1 <= args.n <= MAX_PER_ROW:
        raise ValueError(f"--n must lie in 1..{MAX_PER_ROW} (samples per row), got {args.n}")
    check_seed(args.seed)
    out = args.out or chapter.sample_out
    check_image_path(out)
    count = chapter.sample_count(args)
    if count > MAX_SAMPLES:
        raise ValueError(
            f"these options draw {count} samples; one grid holds at most {MAX_SAMPLES} "
            "(fewer --n or conditions)"
        )
    G, meta, _ = load(chapter, args)
    images, nrow, what = chapter.sample_images(G, meta, args)
    save_grid(images, out, nrow=nrow)
    detail = f" ({what})" if what else ""
    print(f"wrote {len(images)} samples{detail} to {out}")
    return out


# ---------------------------------------------------------------- evaluate
def evaluate(chapter: Chapter, args: argparse.Namespace) -> dict:
    """``ganlab evaluate CHAPTER``: the world's metrics as JSON, with sample sizes."""
    check_positive(args.n, "--n")
    check_seed(args.seed)
    G, meta, label = load(chapter, args)
    n = args.n if chapter.eval_limit is None else min(args.n, chapter.eval_limit)
    return {"chapter": chapter.name, "weights": label, **chapter.evaluate(G, meta, n, args.seed)}


# ---------------------------------------------------------------- bench
def bench(chapter: Chapter, args: argparse.Namespace) -> dict:
    """``ganlab bench CHAPTER``: training images/s of the profile's recipe on this device."""
    from ganlab.profiles import get_profile
    from ganlab.train.bench import bench_recipe

    check_positive(args.steps, "--steps")
    profile = get_profile(args.profile)
    recipe, cfg = chapter.bench_recipe(profile.name, args)
    if getattr(args, "cpu_bf16", False):  # replace() re-validates: refused without native bf16
        cfg = dataclasses.replace(cfg, cpu_bf16=True)
    timed, warmup = chapter.bench_steps_smoke if profile.name == "smoke" else chapter.bench_steps
    return bench_recipe(
        recipe, cfg, profile.device, args.steps or timed, warmup, model_name(recipe), profile.name
    )


# ---------------------------------------------------------------- ship
def ship_weights(source, target: str, metrics: dict, n: int, half: bool, **extra) -> Path:
    """Copy exported weights into ``ganlab/weights/TARGET`` with the metrics measured at
    shipping time (float16 when ``half``), their checksum and the index."""
    from ganlab.weights import HERE, write_index, write_manifest_sha256

    tensors, meta = ckpt.load_state(source)
    if half:
        tensors = half_precision(tensors)
    manifest = {
        **meta.get("manifest", {}),
        "metrics": metrics,
        "n_eval": n,
        **extra,
        "stored_dtype": "float16" if half else "float32",
    }
    path = ckpt.save_state(HERE / f"{target}.safetensors", tensors, {**meta, "manifest": manifest})
    write_manifest_sha256(path)
    write_index()
    print(f"shipped {path}: {json.dumps(metrics)}")
    return path


SCORES = "scores.json"  # in RUN/snapshots/: every selection score, by file name


def _read_scores(run) -> dict:
    """RUN/snapshots/scores.json ({} when absent or unreadable: the scores are recomputed)."""
    try:
        doc = json.loads((Path(run) / SNAPSHOTS / SCORES).read_text())
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def pick_snapshot(chapter: Chapter, run, n: int, reuse: bool = False) -> tuple[Path, dict]:
    """The run's generator (its snapshots and its final export) that scores best by the
    chapter's :meth:`~Chapter.selection_score`, and a record of the choice for the manifest.

    Every score is written to RUN/snapshots/scores.json with the file's SHA-256; ``reuse``
    takes a file's recorded score instead of measuring it again when its SHA-256, ``n`` and
    chapter match (so a long run's snapshots can be scored while it trains)."""
    from ganlab.atomic import atomic_write_text
    from ganlab.weights import sha256_of

    final = Path(run) / "generator.safetensors"  # absent when the run was stopped early
    if not snapshots(run):
        raise ValueError(
            f"--pick-snapshot: {run} has no {SNAPSHOTS}/ (train it with --snapshot-every N)"
        )
    candidates = [*snapshots(run), *([final] if final.exists() else [])]
    recorded, scored = _read_scores(run), []
    for path in candidates:
        key, digest = str(path.relative_to(run)), sha256_of(path)
        old = recorded.get(key, {})
        same = (old.get("sha256"), old.get("n"), old.get("chapter")) == (digest, n, chapter.name)
        if reuse and same:
            score, steps = old, old["steps"]
        else:
            G, meta = chapter.load(path)
            score = chapter.selection_score(G, meta, n)
            steps = meta["manifest"]["steps"]
            recorded[key] = {
                "chapter": chapter.name, "sha256": digest, "n": n, "steps": steps,
                "frechet_distance": score["frechet_distance"], "split": score["split"],
            }  # fmt: skip
            atomic_write_text(Path(run) / SNAPSHOTS / SCORES, json.dumps(recorded, indent=1))
        scored.append((score["frechet_distance"], steps, path))
        print(f"  step {steps:>7}: FD {score['frechet_distance']:.1f} ({score['split']}, n = {n})")
    best, steps, path = min(scored, key=lambda row: row[0])
    record = {
        "by": f"lowest judge FD on {n} captions of the {score['split']} split",
        "n": n,
        "split": score["split"],
        "picked_steps": steps,
        "candidates": [{"steps": s, "frechet_distance": round(fd, 2)} for fd, s, _ in scored],
    }
    return path, record


def ship(chapter: Chapter, args: argparse.Namespace) -> dict:
    """``ganlab ship CHAPTER RUN`` (maintainers): measure a finished run's generator by the
    same code as ``ganlab evaluate`` and ship it under the name its config calls for; with
    ``--pick-snapshot``, the run's snapshot that scores best away from the test split."""
    check_positive(args.n, "--n")
    source, selection = Path(args.run) / "generator.safetensors", {}
    if getattr(args, "pick_snapshot", False):
        check_positive(args.select_n, "--select-n")
        reuse = getattr(args, "reuse_scores", False)
        source, record = pick_snapshot(chapter, args.run, args.select_n, reuse)
        selection = {"selection": record}
    G, meta = chapter.load(source)
    target, half = chapter.ship_target(meta, args)
    metrics, extra = chapter.ship_measure(G, meta, args.n)
    ship_weights(source, target, metrics, args.n, half, **extra, **selection)
    return metrics


COMMANDS = {"train": train, "sample": sample, "evaluate": evaluate, "bench": bench, "ship": ship}


def run(command: str, chapter: Chapter, args: argparse.Namespace):
    """Run one of :data:`COMMANDS` for ``chapter``."""
    return COMMANDS[command](chapter, args)
