r"""Chapter 5, PGGAN on the faces world: its profiles, growing recipe, generation, evaluation.

The commands (``ganlab train/sample/evaluate/bench/ship pggan``) are the course's generic ones
(:mod:`ganlab.chapters.commands`); this module declares what they need: ``CHAPTER``.

**The growing schedule** is a pure function of the step and the run's length, so that a
resumed run grows exactly as an uninterrupted one: every fade-in and every stabilise phase
lasts ``phase_share`` of the run's steps (``round(phase_share * total)``, at least one), in the
official order (stabilise 4x4; fade in 8x8, stabilise 8x8; ...; fade in the last level), and
the last level stabilises for the rest of the run, as in the official code, where the final
resolution trains until ``total_kimg``. The loop acts on it through the recipe:
``optimizer_resets`` clears Adam's state at the first step of every phase (the official
``reset_opt_for_new_lod``), ``schedules`` gives the official per-resolution learning rate
(``G_lrate_dict``: 1.5e-3 at 1024 px in the 1-GPU preset, else the base 1e-3), and ``step``
reads the level and alpha at ``ctx.step`` of ``ctx.total`` (``ctx.progress``). The WGAN-GP
penalty goes through ``ctx.penalty`` (float32, outside autocast).

Scaled values (the paper's and the code's beside them; the model's deviations table in
:mod:`ganlab.models.pggan` has the rest):

=====================  ==================================  ====================================
what                   paper / official code               this chapter (cpu profile)
=====================  ==================================  ====================================
final resolution       1024 px (CelebA-HQ)                 32 px (smoke 16, gpu 64)
widths                 fmap_base 8192, fmap_max 512        fmap_base 1024, fmap_max 64: 64
                       (512 channels up to 64 px)          channels at every level. At 32 (the
                                                           profile until 2026-12-05) the 32 px
                                                           faces kept garbled interiors: judge
                                                           FD 71.4, SWD x1e3 24.8; at 64 eyes,
                                                           nose and mouth: FD 69.8, SWD 16.7
                                                           (n = 1,000, real-vs-real SWD 11.7)
latent                 512 (= nf(0))                       64 (= nf(0), the same rule)
images per phase       paper 800k, code 600k               ``phase_share`` 0.05 of the run:
                       (fade-in and stabilise alike)       400 steps x 16 = 6,400 images
final stabilise        until total_kimg (12,000k in the    the rest of the run (70 %: 5,600
                       v2 preset; the top level gets most  steps, 89,600 images). With 0.1
                       of the run)                         (40 % at the top) the shipped G
                                                           kept the speckle of its random
                                                           32 px filters: FD 85.4 -> 75.2,
                                                           SWD 30.8 -> 25.9 with 0.05 (n=500)
minibatch              paper 16 (to 128 px); code 128 at   16 at every level (the loop has
                       4..16 px, 64 at 32 px               one batch size)
G's EMA                0.999 per minibatch (half-life 693  half-life a tenth of a phase
                       steps: 2-15 % of a phase)           (:func:`ema_decay_for`): 0.9828
training images        CelebA-HQ 30,000                    10,000 faces of the world (train)
run length             12,000k images (v2), 19,000k (v1)   8,000 steps (128k images), about
                                                           an hour on one busy CPU thread
=====================  ==================================  ====================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch

from ganlab.chapters.contract import Chapter, Profile, split_overrides
from ganlab.models import pggan as M
from ganlab.nn import drift_penalty, wgan_gp_penalty
from ganlab.train.export import ModelSpec
from ganlab.train.loop import LoopSettings, Recipe, StepContext, TrainConfig, adam

NAME = "pggan"
SHIPPED = "pggan"  # ganlab/weights/pggan.safetensors
RECHECK_N = 500  # samples the shipped-weights test re-measures (the manifest holds both)
LRATE_DICT = {1024: 0.0015}
"""The official 1-GPU preset's learning rate per resolution (``G_lrate_dict`` =
``D_lrate_dict``); every other resolution uses the base ``ADAM_LR`` = 0.001."""


@dataclass(frozen=True)
class PGGANSettings:
    """The model side of a profile: final ``resolution``, the width formula's ``fmap_base``
    and ``fmap_max`` (``latent_size`` None = nf(0)), the minibatch-stddev group, the share of
    the run's steps per fade-in or stabilise phase, the level training starts at (0 grows from
    4x4; the last level trains at full size from the start, the official ``-nogrowing``), and
    how many training faces."""

    resolution: int = 32
    fmap_base: int = 512
    fmap_max: int = 64
    latent_size: int | None = None
    mbstd_group_size: int = M.MBSTD_GROUP_SIZE
    phase_share: float = 0.1
    start_level: int = 0
    n_faces: int = 10000


# Scale of each run profile. smoke: seconds on 2 cores; cpu: ~25 CPU-minutes to 32 px; gpu:
# 64 px with wider layers (the official widths are 512 channels up to 64 px).
PROFILES = {
    "smoke": Profile(
        PGGANSettings(16, fmap_base=64, fmap_max=16, phase_share=0.2, n_faces=256),
        LoopSettings(10, 8, 5),
    ),
    "cpu": Profile(PGGANSettings(32, 1024, 64, phase_share=0.05), LoopSettings(8000, 16, 50)),
    "gpu": Profile(
        PGGANSettings(64, 4096, 256, phase_share=0.1, n_faces=30000),
        LoopSettings(40000, 64, 100),
    ),
}


@lru_cache(maxsize=16)
def growing_schedule(
    total: int, max_level: int, phase_share: float, start_level: int, batch_size: int
) -> M.ProgressiveSchedule:
    """The run's :class:`~ganlab.models.pggan.ProgressiveSchedule`: every phase but the last
    lasts ``max(1, round(phase_share * total))`` steps; the last level stabilises to the end."""
    if not 0.0 < phase_share <= 1.0:
        raise ValueError(f"phase_share must lie in (0, 1], got {phase_share!r}")
    phases = 2 * (max_level - start_level)  # the phases before the final stabilise
    if phases and phases * phase_share >= 1.0:
        raise ValueError(
            f"phase_share={phase_share} x {phases} growing phases (levels {start_level}.."
            f"{max_level}) leaves no steps to stabilise the last level: use < {1 / phases:.3g}"
        )
    steps = max(1, round(phase_share * total))
    return M.ProgressiveSchedule(
        max_level, steps * batch_size, steps * batch_size, batch_size, start_level=start_level
    )


@dataclass
class PGGANRecipe(Recipe):
    """Karras et al.'s progressive GAN: WGAN-GP (lambda 10) with the drift term, Adam
    (lr 1e-3, betas (0, 0.99)) reset at every phase, G's EMA (0.999), growing from 4x4."""

    resolution: int = 32
    fmap_base: int = 512
    fmap_max: int = 64
    latent_size: int | None = None
    mbstd_group_size: int = M.MBSTD_GROUP_SIZE
    phase_share: float = 0.1
    start_level: int = 0
    n_faces: int = 10000
    steps: int = 1000  # the run's length: the schedule depends on it
    batch_size: int = 16
    data_root: str | None = None
    chapter: str = field(default=NAME, init=False)

    def __post_init__(self) -> None:
        self.max_level = M.level_of(self.resolution)
        if not 0 <= self.start_level <= self.max_level:
            raise ValueError(
                f"start_level must lie in 0..{self.max_level} (0 grows from 4x4, "
                f"{self.max_level} trains at {self.resolution} px from the start), "
                f"got {self.start_level}"
            )
        self.schedule(self.steps)  # refuse a bad phase_share before training

    def config(self) -> dict:
        return {
            "resolution": self.resolution,
            "fmap_base": self.fmap_base,
            "fmap_max": self.fmap_max,
            "latent_size": self.latent_size,
            "mbstd_group_size": self.mbstd_group_size,
            "phase_share": self.phase_share,
            "start_level": self.start_level,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "n_faces": self.n_faces,
            "data": self.data_root or "faces world",
        }

    def schedule(self, total: int | None = None) -> M.ProgressiveSchedule:
        return growing_schedule(
            self.steps if total is None else total,
            self.max_level,
            self.phase_share,
            self.start_level,
            self.batch_size,
        )

    def generator_spec(self) -> ModelSpec:
        return ModelSpec.of(
            M.Generator,
            resolution=self.resolution,
            latent_size=self.latent_size,
            fmap_base=self.fmap_base,
            fmap_max=self.fmap_max,
        )

    def build(self):
        D = M.Discriminator(
            self.resolution,
            fmap_base=self.fmap_base,
            fmap_max=self.fmap_max,
            mbstd_group_size=self.mbstd_group_size,
        )
        return {"G": self.generator_spec().build(), "D": D}

    def optimizers(self, modules, device):
        return {
            name: adam(modules[name].parameters(), M.ADAM_LR, M.ADAM_BETAS, device, eps=M.ADAM_EPS)
            for name in ("G", "D")
        }

    def schedules(self):
        def lrate(step: int, total: int) -> float:
            size = self.schedule(total)(step).resolution
            return LRATE_DICT.get(size, M.ADAM_LR) / M.ADAM_LR

        return {"G": lrate, "D": lrate}

    def optimizer_resets(self, step: int, total: int) -> tuple[str, ...]:
        return ("G", "D") if self.schedule(total)(step).reset_optimizer else ()

    def data(self, device):
        """The training faces as uint8 (N, 3, S, S) at the final resolution, on ``device``."""
        from ganlab.data.faces import training_images

        return training_images(self.n_faces, self.resolution, self.data_root).to(device)

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        from ganlab.data.faces.dataset import to_float

        state = self.schedule(ctx.total)(ctx.step)  # level and alpha at ctx.progress
        level, alpha = state.level, state.alpha
        G, D = ctx.modules["G"], ctx.modules["D"]
        n, dev = ctx.batch_size, ctx.device
        x = to_float(ctx.data[ctx.indices(len(ctx.data))])  # (B, 3, S_max, S_max)
        reals = M.reals_for(x, level, alpha)  # box-downsampled to the level, cross-faded

        # --- D: WGAN-GP critic with the drift term
        z = ctx.raw["G"].sample_z(n, device=dev)
        with torch.no_grad(), ctx.autocast():
            fakes = G(z, level, alpha)
        with ctx.autocast():
            real_scores = D(reals, level, alpha).float()  # (B,)
            fake_scores = D(fakes.to(reals.dtype), level, alpha).float()
        wasserstein = real_scores.mean() - fake_scores.mean()
        gp = ctx.penalty(wgan_gp_penalty, lambda v: D(v, level, alpha), reals, fakes, M.GP_WEIGHT)
        loss_d = -wasserstein + gp + drift_penalty(real_scores, M.DRIFT_WEIGHT)
        ctx.update("D", loss_d)

        # --- G: -D(G(z))
        z = ctx.raw["G"].sample_z(n, device=dev)
        with ctx.autocast():
            loss_g = -D(G(z, level, alpha), level, alpha).float().mean()
        ctx.update("G", loss_g)
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "W": wasserstein.detach(),
            "GP": gp.detach(),
            "level": torch.tensor(float(level)),
            "alpha": torch.tensor(float(alpha)),
        }


def ema_decay_for(phase_steps: int) -> float:
    """G's EMA decay for phases of ``phase_steps`` steps: a half-life of a tenth of a phase,
    at most the official 0.999 (half-life 693 steps). The official phases last 4.7k (600k
    images at batch 128) to 37.5k steps (batch 16), so 0.999's half-life is 2-15 % of a phase;
    with the chapter's short phases 0.999 would average weights across resolutions."""
    half_life = max(phase_steps / 10, 1e-3)
    return min(M.EMA_DECAY, 0.5 ** (1 / half_life))


def recipe_and_config(profile: str, **overrides) -> tuple[PGGANRecipe, TrainConfig]:
    """The recipe and loop config of a profile, with overrides of any setting
    (``resolution``, ``start_level``...), loop or run field (``steps``, ``out``,
    ``ema_decay``...). G's EMA decay defaults to :func:`ema_decay_for` the run's phases."""
    model, loop, rest = split_overrides(PROFILES[profile], overrides)
    steps = loop.get("steps", PROFILES[profile].loop.steps)
    if "ema_decay" not in loop and "ema_decay" not in overrides:
        loop["ema_decay"] = ema_decay_for(max(1, round(model.phase_share * steps)))
    cfg = PROFILES[profile].loop.config(profile, **loop)
    recipe = PGGANRecipe(
        resolution=model.resolution,
        fmap_base=model.fmap_base,
        fmap_max=model.fmap_max,
        latent_size=model.latent_size,
        mbstd_group_size=model.mbstd_group_size,
        phase_share=model.phase_share,
        start_level=model.start_level,
        n_faces=model.n_faces,
        steps=cfg.steps,
        batch_size=cfg.batch_size,
        **rest,
    )
    return recipe, cfg


# ------------------------------------------------------------------ generation
def load_generator(path=None, device="cpu") -> tuple[torch.nn.Module, dict]:
    """A generator from exported weights or a checkpoint (its EMA copy); None: shipped."""
    return CHAPTER.load(path, device)


def trained_state(meta: dict) -> M.ScheduleState:
    """Where a run's schedule stood at its last step (level, alpha): what G draws by default.
    Read from the weights' config (the schedule is a function of the run's length)."""
    cfg = meta["config"]
    level = M.level_of(cfg["resolution"])
    schedule = growing_schedule(
        cfg["steps"], level, cfg["phase_share"], cfg["start_level"], cfg["batch_size"]
    )
    return schedule(cfg["steps"] - 1)


@torch.no_grad()
def generate(G, n: int, seed: int = 0, level: int | None = None, alpha=1.0) -> torch.Tensor:
    """n samples (n, 3, S, S) at ``level`` (default the last), reproducibly from ``seed``: the
    same seed gives the same z at every level."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    z = G.sample_z(n, generator=gen).to(device)
    level = G.max_level if level is None else level
    return G(z, level, alpha).float().cpu()


@torch.no_grad()
def level_strip(G, n: int = 8, seed: int = 0, up_to: int | None = None) -> torch.Tensor:
    """The same n latents drawn at every level 0..``up_to``, each upsampled (nearest) to the
    last one's size: (levels * n, 3, S, S), one row per level."""
    up_to = G.max_level if up_to is None else up_to
    rows = []
    for level in range(up_to + 1):
        x = generate(G, n, seed, level)
        rows.append(torch.nn.functional.interpolate(x, scale_factor=2 ** (up_to - level)))
    return torch.cat(rows)


# ------------------------------------------------------------------ the contract
class PGGAN(Chapter):
    """Chapter 5's contract: faces world, unconditional; ``sample --level`` / ``--all-levels``."""

    name = NAME
    world = "faces"
    profiles = PROFILES
    shipped = SHIPPED
    sample_out = "pggan_samples.png"
    bench_steps = (10, 3)
    bench_steps_smoke = (3, 2)
    eval_limit = 5000
    sample_rows = 4

    def recipe(self, profile, **overrides):
        return recipe_and_config(profile, **overrides)

    def bench_recipe(self, profile, args):
        """Bench times the last level (the costliest): a run that starts at full size."""
        top = M.level_of(self.profiles[profile].model.resolution)
        return self.recipe(profile, progress=False, start_level=top)

    def manifest_extra(self, recipe) -> dict:
        state = recipe.schedule()(recipe.steps - 1)
        return {"level": state.level, "alpha": state.alpha, "resolution_reached": state.resolution}

    def add_options(self, command, parser) -> None:
        if command == "train":
            parser.add_argument(
                "--phase-share",
                type=float,
                metavar="F",
                help="each fade-in or stabilise phase lasts F x the run's steps; the last level "
                "stabilises for the rest (default: the profile's)",
            )
            parser.add_argument(
                "--fmap-base",
                type=int,
                metavar="N",
                help="the width formula's base: a block at 2**r px has min(N / 2**(r-1), "
                "fmap-max) channels (default: the profile's)",
            )
            parser.add_argument(
                "--fmap-max",
                type=int,
                metavar="N",
                help="the widest any block may be (default: the profile's)",
            )
        if command == "sample":
            group = parser.add_mutually_exclusive_group()
            group.add_argument(
                "--level",
                type=int,
                help="draw at level K (4 * 2**K px; default: the level training reached)",
            )
            group.add_argument(
                "--all-levels",
                action="store_true",
                help="one row per level, 4 px up to the last, the same latents in every row",
            )

    def train_options(self, args) -> dict:
        names = ("phase_share", "fmap_base", "fmap_max")
        return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}

    def generator(self, G, meta, for_evaluation=False):
        state = trained_state(meta)
        return lambda n, seed: generate(G, n, seed, state.level, state.alpha)

    def sample_count(self, args) -> int:
        return args.n * (self.sample_rows if not args.all_levels else 9)

    def sample_images(self, G, meta, args):
        state = trained_state(meta)
        if args.all_levels:
            return (
                level_strip(G, args.n, args.seed, state.level),
                args.n,
                f"levels 0..{state.level}: 4..{state.resolution} px",
            )
        level = state.level if args.level is None else args.level
        if not 0 <= level <= G.max_level:
            raise ValueError(
                f"--level must lie in 0..{G.max_level} (4..{G.resolution} px), got {level}"
            )
        alpha = state.alpha if level == state.level else 1.0
        images = generate(G, args.n * self.sample_rows, args.seed, level, alpha)
        return images, args.n, f"level {level}, {M.resolution_of(level)} px"

    def evaluate_generator(self, G, meta, n=1000, seed=0) -> dict:
        """The faces protocol at the resolution training reached: FD / KID with the ladder,
        and SWD per pyramid level with its real-vs-real baseline."""
        from ganlab.evaluation.faces import evaluate_faces

        size = trained_state(meta).resolution
        return evaluate_faces(self.generator(G, meta), n=n, size=max(size, 16), seed=seed, swd=True)

    def evaluate(self, G, meta, n, seed) -> dict:
        state = trained_state(meta)
        return {
            "seed": seed,
            "level": state.level,
            "resolution": state.resolution,
            "metrics": self.evaluate_generator(G, meta, n, seed),
        }

    def ship_measure(self, G, meta, n):
        """The protocol at ``n`` samples, and again at ``RECHECK_N`` (seed 0), the size the
        shipped-weights test re-measures on every CI run."""
        from ganlab.evaluation.faces import summary_metrics

        result = self.evaluate_generator(G, meta, n)
        metrics = {**summary_metrics(result), "swd": result["swd"]}
        recheck = self.evaluate_generator(G, meta, min(n, RECHECK_N))
        metrics["recheck"] = {**summary_metrics(recheck), "swd": recheck["swd"]}
        return metrics, {}


CHAPTER = PGGAN()


__all__ = [
    "CHAPTER",
    "PGGANRecipe",
    "PGGANSettings",
    "PROFILES",
    "generate",
    "growing_schedule",
    "level_strip",
    "load_generator",
    "trained_state",
]
