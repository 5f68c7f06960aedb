"""Chapter 2, GAN-INT-CLS on the birds world: recipe, sampling, evaluation and benchmark.

The text feature of an image is the mean of the joint-embedding encoder's embeddings of 4 of
its 10 captions (Reed et al.), computed on the fly by the frozen encoder. The four models of
the paper are one recipe with two switches (``variant``): GAN, GAN-CLS, GAN-INT, GAN-INT-CLS;
``text=False`` trains the same architecture with the text zeroed (the no-text baseline).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganlab.chapters.birds_commands import finish_training, sample_grid, ship_weights
from ganlab.data.birds import load_birds
from ganlab.models import gan_int_cls as M
from ganlab.profiles import get_profile
from ganlab.text.train import load_encoders, tokenize_all
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import Recipe, StepContext, TrainConfig, Trainer, adam

CHAPTER = "gan-int-cls"
SHIPPED = "gan_int_cls"  # ganlab/weights/gan_int_cls.safetensors
CAPTIONS_PER_FEATURE = 4  # Reed et al. average 4 caption embeddings per image
VARIANT_NAMES = ("gan", "gan-cls", "gan-int", "gan-int-cls", "no-text")  # the comparison
INT_WEIGHT = 0.5  # interpolated texts on the whole batch, weighted as the official code

PROFILES = {
    "smoke": dict(image_size=16, ngf=8, ndf=8, steps=20, batch_size=16, n_birds=128, log_every=10),
    "cpu": dict(
        image_size=32, ngf=16, ndf=16, steps=3000, batch_size=64, n_birds=10000, log_every=50
    ),
    "gpu": dict(
        image_size=64, ngf=128, ndf=64, steps=20000, batch_size=64, n_birds=20000, log_every=100
    ),
}


@dataclass
class GANINTCLSRecipe(Recipe):
    """Reed et al.'s text-to-image GAN; Adam 2e-4, betas (0.5, 0.999), batch 64 (the paper's)."""

    variant: str = "gan-int-cls"
    text: bool = True
    image_size: int = 64
    ngf: int = 32
    ndf: int = 32
    z_dim: int = 100
    proj_dim: int = 128
    n_birds: int = 10000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    encoder_path: str | None = None
    chapter: str = field(default=CHAPTER, init=False)

    def __post_init__(self):
        self.switches = M.variant(self.variant)
        if not self.text and self.switches.cls:
            raise ValueError(
                "text=False (the no-text baseline) needs variant 'gan': CLS needs text"
            )

    def config(self) -> dict:
        keys = ("variant", "text", "image_size", "ngf", "ndf", "z_dim", "proj_dim", "lr")
        return {k: getattr(self, k) for k in keys} | {"betas": list(self.betas)}

    def build(self):
        text_dim = 1024
        G = M.Generator(text_dim, self.proj_dim, self.z_dim, self.ngf, self.image_size)
        D = M.Discriminator(text_dim, self.proj_dim, self.ndf, self.image_size)
        return {"G": G, "D": D}

    def optimizers(self, modules, device):
        return {k: adam(modules[k].parameters(), self.lr, self.betas, device) for k in ("G", "D")}

    def data(self, device):
        birds = load_birds(self.n_birds, "train", self.image_size)
        text_enc, _ = load_encoders("joint", self.encoder_path, device=device)
        ids, lengths = tokenize_all(text_enc.vocab, birds.captions)
        return {
            "images": birds.images.to(device),  # uint8 (N, 3, H, W)
            "species": birds.species.to(device),
            "ids": ids.to(device),  # (N, 10, L)
            "lengths": lengths.to(device),  # (N, 10)
            "encoder": text_enc.model,
        }

    def text_features(self, data, idx: torch.Tensor) -> torch.Tensor:
        """(B,) image indices -> (B, 1024): mean embedding of 4 random captions of each."""
        b, k = idx.shape[0], data["ids"].shape[1]
        pick = torch.randint(0, k, (b, CAPTIONS_PER_FEATURE), device=idx.device)
        ids = data["ids"][idx[:, None], pick].flatten(0, 1)  # (4B, L)
        lengths = data["lengths"][idx[:, None], pick].flatten()  # (4B,)
        with torch.no_grad():
            emb = data["encoder"](ids, lengths, check=False)  # (4B, 1024); validated data
        t = emb.view(b, CAPTIONS_PER_FEATURE, -1).mean(1)
        return t if self.text else torch.zeros_like(t)

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        G, D, data = ctx.modules["G"], ctx.modules["D"], ctx.data
        n, dev = ctx.batch_size, ctx.device
        idx = ctx.indices(len(data["images"]))
        x = data["images"][idx].float().div(127.5).sub(1)  # (B, 3, H, W) in [-1, 1]
        t = self.text_features(data, idx)  # (B, 1024), the right text
        z = torch.randn(n, self.z_dim, device=dev)

        # --- D: s_r = D(x, h), s_w = D(x_wrong, h), s_f = D(G(z, h), h)
        with torch.no_grad(), ctx.autocast():
            fake = G(z, t)
        with ctx.autocast():
            s_r = D(x, t).float()
            s_f = D(fake.to(x.dtype), t).float()
            s_w = None
            if self.switches.cls:
                # another species' image. The one-class check is a host sync, skipped in the
                # step: a batch of a single species (vanishingly rare) pairs same-species images
                wrong = M.mismatched_indices(data["species"][idx], check=False)
                s_w = D(x[wrong], t).float()
        loss_d = M.discriminator_loss(s_r, s_w, s_f, cls=self.switches.cls)
        ctx.opts["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.opts["D"].step()

        # --- G: fool D on the right text, and (INT) on interpolated text that D never sees
        z = torch.randn(n, self.z_dim, device=dev)
        with ctx.autocast():
            g_f = D(G(z, t), t).float()
            g_int = None
            if self.switches.int:
                t_int = M.interpolate_embeddings(t, t.roll(1, 0), beta=0.5)
                z2 = torch.randn(n, self.z_dim, device=dev)
                g_int = D(G(z2, t_int), t_int).float()
        # Official balance: one BCE over B right + B/2 interpolated texts, i.e. the
        # interpolations weigh half as much per batch mean as the right texts.
        loss_g = M.generator_loss(g_f, g_int, int_weight=INT_WEIGHT)
        ctx.opts["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        ctx.opts["G"].step()
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "D(x,h)": torch.sigmoid(s_r).mean().detach(),
            "D(G(z,h),h)": torch.sigmoid(s_f).mean().detach(),
        }


def recipe_and_config(profile: str, **overrides) -> tuple[GANINTCLSRecipe, TrainConfig]:
    s = dict(PROFILES[profile])
    s.update({k: v for k, v in overrides.items() if v is not None})
    if s.get("variant") == "no-text":  # the baseline: plain GAN, text zeroed
        s["variant"], s["text"] = "gan", False
    recipe = GANINTCLSRecipe(
        variant=s.get("variant", "gan-int-cls"),
        text=s.get("text", True),
        image_size=s["image_size"],
        ngf=s["ngf"],
        ndf=s["ndf"],
        n_birds=s["n_birds"],
    )
    cfg = TrainConfig.from_settings(s, profile)
    return recipe, cfg


# ------------------------------------------------------------------ weights
def shipped_variant(name: str) -> Path:
    """The shipped comparison model ``name`` (one of ``VARIANT_NAMES``; 2,000 CPU steps each)."""
    from ganlab.weights import shipped

    if name not in VARIANT_NAMES:
        raise ValueError(f"unknown variant {name!r}: expected one of {VARIANT_NAMES}")
    return shipped(f"{SHIPPED}_2k_{name.replace('-', '_')}")


BN_BATCHES = 20  # batches of 64 for the generator's standing BatchNorm statistics


@torch.no_grad()
def standing_statistics(G, recipe: GANINTCLSRecipe, data, device, batches: int = BN_BATCHES):
    """Recompute G's BatchNorm statistics on fresh (z, text) batches (see recalibrate_batchnorm)."""
    from ganlab.train.ema import recalibrate_batchnorm

    gen = torch.Generator().manual_seed(0)
    inputs = []
    for _ in range(batches):
        idx = torch.randint(0, len(data["images"]), (64,), generator=gen).to(device)
        inputs.append(
            (torch.randn(64, G.z_dim, generator=gen).to(device), recipe.text_features(data, idx))
        )
    return recalibrate_batchnorm(G, inputs)


def export_generator(trainer: Trainer, path, manifest: dict) -> Path:
    """The EMA generator, with standing BatchNorm statistics, and its manifest."""
    G = trainer.generator("G")
    standing_statistics(G, trainer.recipe, trainer.recipe.data(trainer.device), trainer.device)
    meta = {
        "chapter": CHAPTER,
        "kind": "weights",
        "model": "gan_int_cls.Generator",
        "config": trainer.recipe.config(),
        "manifest": {
            **manifest,
            "batchnorm": f"standing statistics over {BN_BATCHES} batches of 64",
        },
    }
    return ckpt.save_state(path, ckpt.module_tensors(G, "G"), meta)


def load_generator(path=None, device="cpu") -> tuple[torch.nn.Module, dict]:
    """A generator from exported weights or a checkpoint (its EMA copy); None: shipped."""
    if path is None:
        from ganlab.weights import shipped

        path = shipped(SHIPPED)
    meta = ckpt.read_meta(path)
    if meta.get("chapter") != CHAPTER:
        raise ckpt.CheckpointError(f"{path} holds chapter {meta.get('chapter')!r}, not {CHAPTER!r}")
    cfg = meta["config"]
    recipe = GANINTCLSRecipe(**{k: v for k, v in cfg.items() if k not in ("lr", "betas")})
    G = recipe.build()["G"]
    tensors, meta = ckpt.load_state(path)
    prefix = (
        "ema.G"
        if meta.get("kind") == "checkpoint" and any(k.startswith("ema.G.") for k in tensors)
        else "G"
    )
    ckpt.load_module(G, tensors, prefix)
    return G.to(device).eval(), meta


@torch.no_grad()
def generate(
    G, captions: list[str], seed: int = 0, text_encoder=None, text: bool = True
) -> torch.Tensor:
    """One image per caption, reproducibly from ``seed``; (N, 3, H, W) in [-1, 1]."""
    if text_encoder is None:
        text_encoder, _ = load_encoders("joint")
    device = next(G.parameters()).device
    t = text_encoder(captions).sentence.to(device)
    if not text:
        t = torch.zeros_like(t)
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(len(captions), G.z_dim, generator=gen).to(device)
    return G(z, t).float().cpu()


def add_condition_arguments(parser) -> None:
    parser.add_argument("--caption", action="append", help="caption(s) to draw (repeatable)")
    parser.add_argument("--n", type=int, default=8, help="samples per caption (default 8)")
    parser.add_argument("--seed", type=int, default=0)


def train(args) -> dict:
    profile = get_profile(args.profile)
    print(profile.describe())
    recipe, cfg = recipe_and_config(
        profile.name,
        steps=args.steps,
        out=args.out or "runs/gan-int-cls",
        resume=args.resume,
        seed=getattr(args, "seed", None),
        variant=getattr(args, "variant", None),
    )
    trainer = Trainer(recipe, cfg, device=profile.device)
    result = trainer.fit()
    return finish_training(
        args, CHAPTER, profile, trainer, result, export_generator, variant=recipe.variant
    )


def sample(args) -> str:
    G, _ = load_generator(args.weights)
    text_encoder, _ = load_encoders("joint")
    draw = lambda caps, seed: generate(G, caps, seed, text_encoder)  # noqa: E731
    return sample_grid(args, draw, "gan_int_cls_samples.png")


def evaluate_generator(
    G, n: int = 1000, split: str = "test", seed: int = 0, text: bool = True
) -> dict:
    from ganlab.chapters.birds_eval import evaluate_text_to_image

    text_encoder, _ = load_encoders("joint")
    fn = lambda caps, s: generate(G, caps, s, text_encoder, text)  # noqa: E731
    return evaluate_text_to_image(fn, n=n, split=split, seed=seed)


def evaluate(args) -> dict:
    G, meta = load_generator(args.weights)
    n = min(args.n, 2000)
    return {
        "chapter": CHAPTER,
        "weights": str(args.weights or f"shipped:{SHIPPED}"),
        "variant": meta.get("config", {}).get("variant"),
        "test": evaluate_generator(G, n, "test", args.seed),
        "zeroshot": evaluate_generator(G, n, "zeroshot", args.seed),
    }


def bench(args) -> dict:
    from ganlab.train.bench import bench_recipe

    profile = get_profile(args.profile)
    recipe, cfg = recipe_and_config(profile.name, progress=False)
    smoke = profile.name == "smoke"
    steps = args.steps or (5 if smoke else 30)
    model = "gan_int_cls.Generator"
    return bench_recipe(recipe, cfg, profile.device, steps, 2 if smoke else 5, model, profile.name)


def _measure(path, n: int) -> dict:
    G, meta = load_generator(path)
    text_on = meta["config"].get("text", True)
    test = evaluate_generator(G, n, "test", 0, text=text_on)
    zero = evaluate_generator(G, n, "zeroshot", 0, text=text_on)
    return {"test": test, "zeroshot": zero}


def ship_as(run, target: str, n: int = 1000, half: bool = False) -> dict:
    """Measure ``run``'s generator (test and zero-shot captions) and ship it as ``target``.

    ``half=True`` stores float16 (the comparison models: half the bytes, the same samples up
    to rounding); the metrics at shipping time go into the manifest and the index.
    """
    source = Path(run) / "generator.safetensors"
    result = _measure(source, n)
    metrics = {
        s: {
            "text_alignment": r["text_alignment"]["value"],
            "chance": r["text_alignment"]["chance"],
            "frechet_distance": r["frechet_distance"]["value"],
            "r_precision": r["r_precision"].get("value"),
            "n": r["n"],
        }
        for s, r in result.items()
    }
    ship_weights(source, target, metrics, n, half)
    return result


def ship(args) -> dict:
    """``ganlab ship gan-int-cls RUN [--main]``: the main model, or a variant (float16).

    Variants ship as ``gan_int_cls_<variant>`` (``no-text`` for the baseline).
    """
    cfg = ckpt.read_meta(Path(args.run) / "generator.safetensors")["config"]
    name = "no-text" if not cfg.get("text", True) else cfg["variant"]
    if getattr(args, "main", False):
        return ship_as(args.run, SHIPPED, args.n)
    return ship_as(args.run, f"{SHIPPED}_{name.replace('-', '_')}", args.n, half=True)
