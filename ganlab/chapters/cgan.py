"""Chapter 1, CGAN on the real digits: its profiles, recipe, generation and evaluation.

The commands (``ganlab train/sample/evaluate/bench/ship cgan``) are the course's generic ones
(:mod:`ganlab.chapters.commands`); this module declares what they need (the contract of
:mod:`ganlab.chapters.contract`): ``CHAPTER``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ganlab.chapters.contract import Chapter, Profile, split_overrides
from ganlab.data.digits import NUM_CLASSES, load_digits
from ganlab.models import cgan as M
from ganlab.models.cgan import discriminator_loss, generator_loss
from ganlab.train.export import ModelSpec
from ganlab.train.loop import LoopSettings, Recipe, StepContext, TrainConfig, adam

NAME = "cgan"
SHIPPED = "cgan_conv"  # ganlab/weights/cgan_conv.safetensors


@dataclass(frozen=True)
class CGANSettings:
    """The model side of a profile: architecture (``conv`` or the paper's ``paper`` MLP),
    width of the conv nets, and the noise dimension."""

    arch: str = "conv"
    width: int = 32
    z_dim: int = 64


# Scale of each run profile. smoke: seconds on 2 cores; cpu: minutes; gpu: the full run.
PROFILES = {
    "smoke": Profile(CGANSettings("conv", 8, 16), LoopSettings(30, 32, 10)),
    "cpu": Profile(CGANSettings("conv", 32, 64), LoopSettings(10000, 64, 50)),
    "gpu": Profile(CGANSettings("conv", 64, 64), LoopSettings(10000, 128, 100)),
}


@dataclass
class CGANRecipe(Recipe):
    """Mirza & Osindero's CGAN: the label enters both G and D; BCE, non-saturating G loss.

    Adam lr 2e-4, betas (0.5, 0.999) for both players (the paper used SGD with momentum;
    see ``ganlab.models.cgan`` for every deviation).
    """

    arch: str = "conv"
    width: int = 32
    z_dim: int = 64
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    data_root: str | None = None
    chapter: str = field(default=NAME, init=False)

    def config(self) -> dict:
        cfg = {"arch": self.arch, "z_dim": self.z_dim, "lr": self.lr, "betas": list(self.betas)}
        if self.arch == "conv":
            cfg["width"] = self.width
        return cfg

    def generator_spec(self) -> ModelSpec:
        if self.arch == "paper":
            return ModelSpec.of(M.PaperGenerator, z_dim=self.z_dim)
        if self.arch != "conv":
            raise ValueError(f"arch must be one of ['conv', 'paper'], got {self.arch!r}")
        return ModelSpec.of(M.ConvGenerator, z_dim=self.z_dim, width=self.width)

    def build(self):
        G = self.generator_spec().build()
        D = (
            M.PaperDiscriminator()
            if self.arch == "paper"
            else M.ConvDiscriminator(width=self.width)
        )
        return {"G": G, "D": D}

    def optimizers(self, modules, device):
        return {
            "G": adam(modules["G"].parameters(), self.lr, self.betas, device),
            "D": adam(modules["D"].parameters(), self.lr, self.betas, device),
        }

    def data(self, device):
        x, y = load_digits("train", root=self.data_root)
        return x.to(device), y.to(device)

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        G, D = ctx.modules["G"], ctx.modules["D"]
        x_all, y_all = ctx.data
        n, dev = ctx.batch_size, ctx.device
        idx = ctx.indices(len(x_all))
        x, y = x_all[idx], y_all[idx]  # (B,1,28,28), (B,)

        # --- discriminator: real (x, y) -> 1, fake (G(z, y'), y') -> 0. Real and fake go
        # through D in separate batches, so that D's BatchNorm never mixes their statistics.
        z = ctx.raw["G"].sample_z(n, device=dev)
        y_fake = torch.randint(0, NUM_CLASSES, (n,), device=dev)
        with torch.no_grad(), ctx.autocast():
            fake = G(z, y_fake)
        with ctx.autocast():
            real_logits = D(x, y).float()
            fake_logits = D(fake.to(x.dtype), y_fake).float()
        loss_d = discriminator_loss(real_logits, fake_logits)
        ctx.update("D", loss_d)

        # --- generator: non-saturating, fool D on fresh z and labels
        z = ctx.raw["G"].sample_z(n, device=dev)
        y_fake = torch.randint(0, NUM_CLASSES, (n,), device=dev)
        with ctx.autocast():
            g_logits = D(G(z, y_fake), y_fake).float()
        loss_g = generator_loss(g_logits)
        ctx.update("G", loss_g)
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "D(x)": torch.sigmoid(real_logits).mean().detach(),
            "D(G(z))": torch.sigmoid(fake_logits).mean().detach(),
        }


def recipe_and_config(profile: str, **overrides) -> tuple[CGANRecipe, TrainConfig]:
    """The recipe and loop config of a profile, with overrides (``arch``, ``width``,
    ``z_dim``, ``data_root``, loop and run fields: ``steps``, ``out``, ``compile``...)."""
    model, loop, rest = split_overrides(PROFILES[profile], overrides)
    recipe = CGANRecipe(arch=model.arch, width=model.width, z_dim=model.z_dim, **rest)
    return recipe, PROFILES[profile].loop.config(profile, **loop)


# ------------------------------------------------------------------ generation
def load_generator(path=None, device="cpu") -> tuple[torch.nn.Module, dict]:
    """A generator from exported weights or a training checkpoint (its EMA copy); ``None``
    loads the course's shipped weights."""
    return CHAPTER.load(path, device)


@torch.no_grad()
def generate(G, labels: torch.Tensor, seed: int = 0, batch: int = 500) -> torch.Tensor:
    """Samples for the given labels, reproducibly from ``seed`` (CPU generator)."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    outs = []
    for chunk in labels.split(batch):
        z = G.sample_z(len(chunk), generator=gen).to(device)
        outs.append(G(z, chunk.to(device)).float().cpu())
    return torch.cat(outs) if outs else torch.empty(0, 1, 28, 28)


def class_grid(G, n_per_class: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Row c holds class c; column j uses the same z for every class."""
    if not isinstance(n_per_class, int) or n_per_class < 1:
        raise ValueError(f"n_per_class must be a positive integer, got {n_per_class!r}")
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    z = G.sample_z(n_per_class, generator=gen)  # (n, z_dim)
    z = z.repeat(NUM_CLASSES, 1).to(device)  # (10 n, z_dim)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(n_per_class)
    with torch.no_grad():
        return G(z, labels.to(device)).float().cpu(), labels


# ------------------------------------------------------------------ the contract
class CGAN(Chapter):
    """Chapter 1's contract: digits world, labels as the conditions (``--digit``)."""

    name = NAME
    world = "digits"
    profiles = PROFILES
    shipped = SHIPPED
    sample_out = "cgan_samples.png"
    bench_steps = (50, 10)
    bench_steps_smoke = (5, 2)

    def recipe(self, profile, **overrides):
        return recipe_and_config(profile, **overrides)

    def add_options(self, command, parser) -> None:
        if command == "sample":
            parser.add_argument(
                "--digit",
                type=int,
                action="append",
                help="digit(s) to draw (0-9, repeatable); default: a grid of all ten",
            )

    def generator(self, G, meta, for_evaluation=False):
        return lambda labels, seed: generate(G, labels, seed)

    def sample_count(self, args) -> int:
        return len(args.digit or range(NUM_CLASSES)) * args.n

    def sample_images(self, G, meta, args):
        bad = [d for d in args.digit or () if not 0 <= d < NUM_CLASSES]
        if bad:
            raise ValueError(f"--digit must lie in 0..9, got {bad}")
        if args.digit:
            labels = torch.tensor(args.digit).repeat_interleave(args.n)
            return generate(G, labels, seed=args.seed), args.n, ""
        return class_grid(G, args.n, seed=args.seed)[0], args.n, ""

    def evaluate(self, G, meta, n, seed) -> dict:
        from ganlab.evaluation.digits import evaluate_class_conditional

        metrics = evaluate_class_conditional(self.generator(G, meta), n=n, seed=seed)
        return {"seed": seed, "metrics": metrics}

    def ship_measure(self, G, meta, n):
        return self.evaluate(G, meta, n, 0)["metrics"], {}


CHAPTER = CGAN()

__all__ = ["CGANRecipe", "CHAPTER", "PROFILES", "class_grid", "generate", "load_generator"]
