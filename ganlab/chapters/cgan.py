"""Chapter 1, CGAN on the real digits: training recipe, sampling, evaluation and benchmark."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganlab.data.digits import NUM_CLASSES, load_digits
from ganlab.models.cgan import build_cgan, discriminator_loss, generator_loss
from ganlab.profiles import get_profile
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import Recipe, StepContext, TrainConfig, Trainer, adam

CHAPTER = "cgan"
SHIPPED = "cgan_conv"  # ganlab/weights/cgan_conv.safetensors

# Scale of each run profile. smoke: seconds on 2 cores; cpu: minutes; gpu: the full run.
PROFILES = {
    "smoke": dict(arch="conv", width=8, z_dim=16, steps=30, batch_size=32, log_every=10),
    "cpu": dict(arch="conv", width=32, z_dim=64, steps=10000, batch_size=64, log_every=50),
    "gpu": dict(arch="conv", width=64, z_dim=64, steps=10000, batch_size=128, log_every=100),
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
    chapter: str = field(default=CHAPTER, init=False)

    def config(self) -> dict:
        cfg = {"arch": self.arch, "z_dim": self.z_dim, "lr": self.lr, "betas": list(self.betas)}
        if self.arch == "conv":
            cfg["width"] = self.width
        return cfg

    def build(self):
        G, D = build_cgan(self.arch, width=self.width, z_dim=self.z_dim)
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
        ctx.opts["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.opts["D"].step()

        # --- generator: non-saturating, fool D on fresh z and labels
        z = ctx.raw["G"].sample_z(n, device=dev)
        y_fake = torch.randint(0, NUM_CLASSES, (n,), device=dev)
        with ctx.autocast():
            g_logits = D(G(z, y_fake), y_fake).float()
        loss_g = generator_loss(g_logits)
        ctx.opts["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        ctx.opts["G"].step()
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "D(x)": torch.sigmoid(real_logits).mean().detach(),
            "D(G(z))": torch.sigmoid(fake_logits).mean().detach(),
        }


def recipe_and_config(profile: str, **overrides) -> tuple[CGANRecipe, TrainConfig]:
    """The recipe and loop settings of a profile, with command-line overrides."""
    s = dict(PROFILES[profile])
    s.update({k: v for k, v in overrides.items() if v is not None})
    recipe = CGANRecipe(
        arch=s["arch"], width=s["width"], z_dim=s["z_dim"], data_root=s.get("data_root")
    )
    cfg = TrainConfig.from_settings(s, profile)
    return recipe, cfg


# ------------------------------------------------------------------ weights
def generator_meta(recipe: CGANRecipe) -> dict:
    model = "cgan.PaperGenerator" if recipe.arch == "paper" else "cgan.ConvGenerator"
    return {"chapter": CHAPTER, "kind": "weights", "model": model, "config": recipe.config()}


def export_generator(trainer: Trainer, path: str | Path, manifest: dict) -> Path:
    """Write the (EMA) generator alone, with its manifest, for shipping or sampling."""
    G = trainer.generator("G")
    meta = {**generator_meta(trainer.recipe), "manifest": manifest}
    return ckpt.save_state(path, ckpt.module_tensors(G, "G"), meta)


def load_generator(path: str | Path | None = None, device="cpu") -> tuple[torch.nn.Module, dict]:
    """A generator from exported weights or from a training checkpoint (its EMA copy).

    ``path=None`` loads the course's shipped weights.
    """
    if path is None:
        from ganlab.weights import shipped

        path = shipped(SHIPPED)
    meta = ckpt.read_meta(path)
    if meta.get("chapter") != CHAPTER:
        raise ckpt.CheckpointError(
            f"{path} holds weights of chapter {meta.get('chapter')!r}, not {CHAPTER!r}"
        )
    cfg = meta["config"]
    recipe = CGANRecipe(arch=cfg["arch"], width=cfg.get("width", 32), z_dim=cfg["z_dim"])
    G = recipe.build()["G"]
    tensors, meta = ckpt.load_state(path)
    has_ema = any(k.startswith("ema.G.") for k in tensors)
    prefix = "ema.G" if meta.get("kind") == "checkpoint" and has_ema else "G"
    ckpt.load_module(G, tensors, prefix)
    return G.to(device).eval(), meta


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
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    z = G.sample_z(n_per_class, generator=gen)  # (n, z_dim)
    z = z.repeat(NUM_CLASSES, 1).to(device)  # (10 n, z_dim)
    labels = torch.arange(NUM_CLASSES).repeat_interleave(n_per_class)
    with torch.no_grad():
        return G(z, labels.to(device)).float().cpu(), labels


# ------------------------------------------------------------------ commands
def add_condition_arguments(parser) -> None:
    parser.add_argument(
        "--digit",
        type=int,
        action="append",
        help="digit(s) to draw (0-9, repeatable); default: a grid of all ten",
    )
    parser.add_argument("--n", type=int, default=8, help="samples per digit (default 8)")
    parser.add_argument("--seed", type=int, default=0)


def train(args) -> dict:
    profile = get_profile(args.profile)
    print(profile.describe())
    recipe, cfg = recipe_and_config(
        profile.name,
        steps=args.steps,
        out=args.out or "runs/cgan",
        resume=args.resume,
        data_root=getattr(args, "data_root", None),
        seed=getattr(args, "seed", None),
    )
    trainer = Trainer(recipe, cfg, device=profile.device)
    result = trainer.fit()
    out = Path(cfg.out)
    weights = out / "generator.safetensors"
    manifest = {
        "chapter": CHAPTER,
        "profile": profile.name,
        "command": " ".join(["ganlab", *args.argv]) if hasattr(args, "argv") else "ganlab train",
        "steps": result.step,
        "seconds": round(trainer.seconds, 1),  # all runs of this checkpoint, resumes included
        "device": str(trainer.device),
    }
    if trainer.dist.is_main:
        export_generator(trainer, weights, manifest)
        print(f"checkpoint: {result.checkpoint}\ngenerator: {weights}")
    return {"checkpoint": result.checkpoint, "generator": str(weights), **manifest}


def sample(args) -> str:
    from ganlab.viz.grids import save_grid

    G, _ = load_generator(args.weights)
    digits = args.digit or list(range(NUM_CLASSES))
    bad = [d for d in digits if not 0 <= d < NUM_CLASSES]
    if bad:
        raise ValueError(f"--digit must lie in 0..9, got {bad}")
    if args.n < 1:
        raise ValueError(f"--n must be at least 1, got {args.n}")
    if args.digit:
        labels = torch.tensor(digits).repeat_interleave(args.n)
        images = generate(G, labels, seed=args.seed)
    else:
        images, labels = class_grid(G, args.n, seed=args.seed)
    out = args.out or "cgan_samples.png"
    save_grid(images, out, nrow=args.n)
    print(f"wrote {len(images)} samples to {out}")
    return out


def evaluate(args) -> dict:
    from ganlab.chapters.cgan_eval import evaluate_generator

    G, meta = load_generator(args.weights)
    return evaluate_generator(
        G,
        n=args.n,
        seed=getattr(args, "seed", 0) or 0,
        weights=str(args.weights or f"shipped:{SHIPPED}"),
    )


def bench(args) -> dict:
    from ganlab.train.bench import bench_recipe

    profile = get_profile(args.profile)
    recipe, cfg = recipe_and_config(profile.name, progress=False)
    smoke = profile.name == "smoke"
    steps = args.steps or (5 if smoke else 50)
    model = generator_meta(recipe)["model"]
    return bench_recipe(recipe, cfg, profile.device, steps, 2 if smoke else 10, model, profile.name)


def ship(args) -> dict:
    """Measure a finished run's generator and ship it in the package with its manifest.

    ``ganlab ship cgan runs/cgan_cpu`` (course maintainers): the metrics at save time are
    measured here, by the same code as ``ganlab evaluate``; a test re-measures them.
    """
    from ganlab.chapters.cgan_eval import evaluate_generator
    from ganlab.weights import ship as ship_weights

    source = Path(args.run) / "generator.safetensors"
    G, meta = load_generator(source)
    result = evaluate_generator(G, n=args.n, seed=0, weights=str(source))
    path = ship_weights(source, SHIPPED, {"metrics": result["metrics"], "n_eval": args.n})
    print(f"shipped {path}")
    return result


__all__ = ["CGANRecipe", "PROFILES", "class_grid", "generate", "load_generator"]
