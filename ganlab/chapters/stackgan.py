"""Chapter 3, StackGAN on the birds world: both stages' recipes, sampling, evaluation, bench.

Training runs in the paper's order: Stage-I first (text -> s1 px sketch), then Stage-II on
top of the frozen Stage-I (sketch + text again -> 4 * s1 px). ``ganlab train stackgan``
does both; ``--stage 1`` or ``--stage 2`` (with ``--stage1 WEIGHTS``) one of them.

The text feature of an image is the joint-embedding encoder's embedding of one of its 10
captions, picked at random every step (the PyTorch port; the TF code averages 4), computed
on the fly by the frozen encoder. The ``no-ca`` variant is the paper's ablation: Stage-I
conditioned on the compressed embedding mu itself, with no sampling and no KL term.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from ganlab.chapters.birds_commands import finish_training, sample_grid, ship_weights
from ganlab.data.birds import load_birds
from ganlab.models import stackgan as M
from ganlab.profiles import get_profile
from ganlab.text.train import load_encoders, tokenize_all
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import Recipe, StepContext, TrainConfig, Trainer, adam

CHAPTER = "stackgan"
SHIPPED = {1: "stackgan_stage1", 2: "stackgan_stage2"}  # ganlab/weights/NAME.safetensors
SHIPPED_NO_CA = "stackgan_stage1_no_ca"
TEXT_DIM = 1024  # the joint encoder's sentence embedding
VARIANTS = ("ca", "no-ca")

PROFILES = {
    "smoke": dict(
        stage1_size=16, ngf1=8, ndf1=8, ngf2=8, ndf2=4, num_residual=1,
        steps1=6, steps2=6, batch_size=8, n_birds=64, log_every=3,
    ),
    "cpu": dict(
        stage1_size=16, ngf1=32, ndf1=16, ngf2=16, ndf2=8, num_residual=2,
        steps1=3000, steps2=2000, batch_size=64, n_birds=10000, log_every=50,
    ),
    "gpu": dict(
        stage1_size=64, ngf1=64, ndf1=64, ngf2=64, ndf2=32, num_residual=4,
        steps1=10000, steps2=10000, batch_size=64, n_birds=20000, log_every=100,
    ),
}  # fmt: skip


# ------------------------------------------------------------------ the recipes
@dataclass
class _StackGANRecipe(Recipe):
    """What both stages share: birds, captions, the frozen text encoder, Adam 2e-4 (0.5, 0.999)."""

    n_birds: int = 10000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    kl_weight: float = M.KL_WEIGHT
    encoder_path: str | None = None
    chapter: str = field(default=CHAPTER, init=False)

    def optimizers(self, modules, device):
        trainable = {k: [p for p in modules[k].parameters() if p.requires_grad] for k in "GD"}
        return {k: adam(trainable[k], self.lr, self.betas, device) for k in "GD"}

    def load_data(self, device, size: int) -> dict:
        birds = load_birds(self.n_birds, "train", size)
        text_enc, _ = load_encoders("joint", self.encoder_path, device=device)
        ids, lengths = tokenize_all(text_enc.vocab, birds.captions)
        return {
            "images": birds.images.to(device),  # uint8 (N, 3, S, S)
            "ids": ids.to(device),  # (N, 10, L)
            "lengths": lengths.to(device),  # (N, 10)
            "encoder": text_enc.model,
        }

    def text_embedding(self, data, idx: torch.Tensor) -> torch.Tensor:
        """(B,) image indices -> (B, 1024): the embedding of one random caption of each."""
        pick = torch.randint(0, data["ids"].shape[1], idx.shape, device=idx.device)
        with torch.no_grad():  # the encoder is frozen; the data were validated on load
            return data["encoder"](data["ids"][idx, pick], data["lengths"][idx, pick], check=False)

    def batch(self, ctx: StepContext):
        data = ctx.data
        idx = ctx.indices(len(data["images"]))
        x = data["images"][idx].float().div(127.5).sub(1)  # (B, 3, S, S) in [-1, 1]
        return x, self.text_embedding(data, idx)

    def d_and_g_steps(self, ctx: StepContext, x, t, generate, uncond: bool):
        """One D step then one G step, the same at both stages.

        ``generate(t, z) -> (image, mu, logvar)``. D's condition is G's CA mean, detached
        (the port); wrong pairs are image i with the condition of image i+1.
        """
        D = ctx.modules["D"]
        z_dim = ctx.raw["G"].z_dim
        z = torch.randn(ctx.batch_size, z_dim, device=ctx.device)
        with torch.no_grad(), ctx.autocast():
            fake, mu, _ = generate(t, z)
        cond = mu.detach().float()
        with ctx.autocast():
            real_out = D(x, cond, wrong=True)  # the wrong pairs reuse the real features
            fake_out = D(fake.to(x.dtype), cond)
        if uncond:
            (s_r, u_r, s_w), (s_f, u_f) = real_out, fake_out
            u_r, u_f = u_r.float(), u_f.float()
        else:
            (s_r, s_w), s_f, u_r, u_f = real_out, fake_out, None, None
        s_r, s_w, s_f = s_r.float(), s_w.float(), s_f.float()
        loss_d = M.discriminator_loss(s_r, s_w, s_f, u_r, u_f)
        ctx.opts["D"].zero_grad(set_to_none=True)
        loss_d.backward()
        ctx.opts["D"].step()

        z = torch.randn(ctx.batch_size, z_dim, device=ctx.device)
        with ctx.autocast():
            fake, mu, logvar = generate(t, z)
            g_out = D(fake, mu.detach())
        g_cond, g_uncond = g_out if uncond else (g_out, None)
        loss_g = M.generator_loss(
            g_cond.float(), mu.float(), logvar.float(), self.kl_weight,
            None if g_uncond is None else g_uncond.float(),
        )  # fmt: skip
        ctx.opts["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        ctx.opts["G"].step()
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "KL": M.kl_divergence(mu.detach().float(), logvar.detach().float()),
            "D(x,t)": torch.sigmoid(s_r).mean().detach(),
            "D(G(z,c),t)": torch.sigmoid(s_f).mean().detach(),
        }


@dataclass
class StageIRecipe(_StackGANRecipe):
    """Stage-I: G0 and D0 at ``image_size`` px; ``use_ca=False`` is the no-CA ablation."""

    image_size: int = 64
    ngf: int = 128
    ndf: int = 64
    use_ca: bool = True

    def __post_init__(self):
        if not self.use_ca:
            self.kl_weight = 0.0  # no CA, no KL

    def config(self) -> dict:
        keys = ("image_size", "ngf", "ndf", "use_ca", "kl_weight", "lr")
        return {"stage": 1, **{k: getattr(self, k) for k in keys}, "betas": list(self.betas)}

    def build(self):
        G = _build_stage1(self.config())
        D = M.StageIDiscriminator(ndf=self.ndf, image_size=self.image_size)
        return {"G": G, "D": D}

    def data(self, device):
        return self.load_data(device, self.image_size)

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        x, t = self.batch(ctx)
        G = ctx.modules["G"]
        return self.d_and_g_steps(ctx, x, t, lambda t, z: G(t, z), uncond=False)


@dataclass
class StageIIRecipe(_StackGANRecipe):
    """Stage-II on a trained, frozen Stage-I (``stage1_path``: its exported weights)."""

    stage1_path: str | None = None
    stage1: dict | None = None  # the Stage-I config (filled from its weights)
    ngf: int = 128
    ndf: int = 64
    num_residual: int = 4

    def __post_init__(self):
        if self.stage1 is None:
            self.stage1 = ckpt.read_meta(self.stage1_path or _shipped(1))["config"]
        if self.stage1.get("stage") != 1:
            raise ckpt.CheckpointError(
                f"Stage-II needs Stage-I weights; {self.stage1_path} holds {self.stage1!r}"
            )

    @property
    def image_size(self) -> int:
        return 4 * self.stage1["image_size"]

    def config(self) -> dict:
        keys = ("ngf", "ndf", "num_residual", "kl_weight", "lr")
        return {
            "stage": 2, "image_size": self.image_size, **{k: getattr(self, k) for k in keys},
            "betas": list(self.betas), "stage1": self.stage1,
        }  # fmt: skip

    def build(self):
        stage1 = _build_stage1(self.stage1)  # trained weights; a resume reloads them too
        tensors, _ = ckpt.load_state(self.stage1_path or _shipped(1))
        ckpt.load_module(stage1, tensors, _generator_prefix(tensors))
        G = M.StageIIGenerator(stage1, ngf=self.ngf, num_residual=self.num_residual)
        D = M.StageIIDiscriminator(ndf=self.ndf, image_size=self.image_size)
        return {"G": G, "D": D}

    def data(self, device):
        return self.load_data(device, self.image_size)

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        x, t = self.batch(ctx)
        G = ctx.modules["G"]

        def generate(t, z):
            _, image, mu, logvar = G(t, z)  # Stage-I image is made (frozen) and discarded
            return image, mu, logvar

        return self.d_and_g_steps(ctx, x, t, generate, uncond=True)


def _build_stage1(cfg: dict) -> M.StageIGenerator:
    return M.StageIGenerator(
        TEXT_DIM, ngf=cfg["ngf"], image_size=cfg["image_size"], use_ca=cfg.get("use_ca", True)
    )


def _generator_prefix(tensors: dict) -> str:
    """Exported weights hold ``G.*``; a training checkpoint's generator is its EMA ``ema.G.*``."""
    return "ema.G" if any(k.startswith("ema.G.") for k in tensors) else "G"


def _shipped(stage: int) -> Path:
    from ganlab.weights import shipped

    return shipped(SHIPPED[stage])


def recipe_and_config(profile: str, stage: int, **overrides):
    """The recipe and training config of ``stage`` (1 or 2) in ``profile``."""
    if stage not in (1, 2):
        raise ValueError(f"stage must be 1 or 2, got {stage!r}")
    s = dict(PROFILES[profile])
    s.update({k: v for k, v in overrides.items() if v is not None})
    variant = s.get("variant") or "ca"
    if variant not in VARIANTS:
        raise ValueError(f"unknown stackgan variant {variant!r}: expected one of {VARIANTS}")
    if stage == 1:
        recipe = StageIRecipe(
            image_size=s["stage1_size"], ngf=s["ngf1"], ndf=s["ndf1"],
            use_ca=variant == "ca", n_birds=s["n_birds"],
        )  # fmt: skip
    else:
        if variant != "ca":
            raise ValueError("the no-ca variant is a Stage-I ablation; train it with --stage 1")
        recipe = StageIIRecipe(
            stage1_path=s.get("stage1_path"), ngf=s["ngf2"], ndf=s["ndf2"],
            num_residual=s["num_residual"], n_birds=s["n_birds"],
        )  # fmt: skip
    steps = s.get("steps") or s[f"steps{stage}"]
    cfg = TrainConfig.from_settings(s, profile, steps)
    return recipe, cfg


# ------------------------------------------------------------------ weights
BN_BATCHES = 20  # batches of 64 for the generator's standing BatchNorm statistics


@torch.no_grad()
def standing_statistics(G, recipe: _StackGANRecipe, data, device, batches: int = BN_BATCHES):
    """Recompute G's BatchNorm statistics on fresh (text, z) batches; Stage-I's stay frozen."""
    from ganlab.train.ema import recalibrate_batchnorm

    gen = torch.Generator().manual_seed(0)
    inputs = []
    for _ in range(batches):
        idx = torch.randint(0, len(data["images"]), (64,), generator=gen).to(device)
        z = torch.randn(64, G.z_dim, generator=gen).to(device)
        inputs.append((recipe.text_embedding(data, idx), z))
    return recalibrate_batchnorm(G, inputs, keep=getattr(G, "stage1", None))


def export_generator(trainer: Trainer, path, manifest: dict) -> Path:
    """The EMA generator, with standing BatchNorm statistics, and its manifest."""
    G = trainer.generator("G")
    recipe = trainer.recipe
    standing_statistics(G, recipe, recipe.data(trainer.device), trainer.device)
    stage = recipe.config()["stage"]
    meta = {
        "chapter": CHAPTER,
        "kind": "weights",
        "model": f"stackgan.{'StageIGenerator' if stage == 1 else 'StageIIGenerator'}",
        "config": recipe.config(),
        "manifest": {**manifest, "batchnorm": f"standing statistics, {BN_BATCHES} batches of 64"},
    }
    return ckpt.save_state(path, ckpt.module_tensors(G, "G"), meta)


def load_generator(path=None, device="cpu", stage: int = 2) -> tuple[torch.nn.Module, dict]:
    """A Stage-I or Stage-II generator from exported weights or a checkpoint (its EMA copy).

    ``path=None``: the shipped generator of ``stage``. A Stage-II generator carries its own
    frozen Stage-I (``G.stage1``), so one file draws both stages.
    """
    path = _shipped(stage) if path is None else path
    meta = ckpt.read_meta(path)
    if meta.get("chapter") != CHAPTER:
        raise ckpt.CheckpointError(f"{path} holds chapter {meta.get('chapter')!r}, not {CHAPTER!r}")
    cfg = meta["config"]
    if cfg.get("stage") == 1:
        G = _build_stage1(cfg)
    else:
        G = M.StageIIGenerator(_build_stage1(cfg["stage1"]), cfg["ngf"], cfg["num_residual"])
    tensors, meta = ckpt.load_state(path)
    ckpt.load_module(G, tensors, _generator_prefix(tensors))
    return G.to(device).eval(), meta


def _seeded(seed: int, device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


@torch.no_grad()
def generate_stages(G, t: torch.Tensor, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(Stage-I images, Stage-II images or None) for text embeddings ``t`` (B, 1024), on CPU.

    z and both CA samples come from ``seed``, so the same seed gives the same birds.
    """
    device = next(G.parameters()).device
    gen = _seeded(seed, device)
    z = torch.randn(len(t), G.z_dim, generator=gen, device=device)
    t = t.to(device)
    if isinstance(G, M.StageIIGenerator):
        low, high, _, _ = G(t, z, gen)
        return low.float().cpu(), high.float().cpu()
    return G(t, z, gen)[0].float().cpu(), None


def generate(G, captions: list[str], seed: int = 0, text_encoder=None, size: int | None = None):
    """One image per caption from G's last stage, (N, 3, S, S) in [-1, 1].

    ``size`` resizes (bilinear; e.g. Stage-I upsampled to Stage-II's size for comparison).
    """
    if text_encoder is None:
        text_encoder, _ = load_encoders("joint")
    low, high = generate_stages(G, text_encoder(captions).sentence, seed)
    images = low if high is None else high
    if size is not None and images.shape[-1] != size:
        images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
    return images.clamp(-1, 1)


def add_condition_arguments(parser) -> None:
    parser.add_argument("--caption", action="append", help="caption(s) to draw (repeatable)")
    parser.add_argument("--n", type=int, default=8, help="samples per caption (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stage", type=int, choices=(1, 2), default=2, help="shipped stage")


def _train_stage(profile, stage: int, out: Path, args, **overrides) -> dict:
    recipe, cfg = recipe_and_config(
        profile.name, stage, steps=args.steps, out=str(out), resume=args.resume,
        seed=getattr(args, "seed", None), **overrides,
    )  # fmt: skip
    print(f"StackGAN Stage-{'I' * stage}: {json.dumps(recipe.config())}")
    trainer = Trainer(recipe, cfg, device=profile.device)
    result = trainer.fit()
    return finish_training(args, CHAPTER, profile, trainer, result, export_generator, stage=stage)


def train(args) -> dict:
    """Stage-I then Stage-II on it (default), or one ``--stage``; runs in OUT/stage1, OUT/stage2.

    ``--variant no-ca`` is the Stage-I ablation: it trains Stage-I only.
    """
    profile = get_profile(args.profile)
    print(profile.describe())
    out = Path(args.out or "runs/stackgan")
    stage = getattr(args, "stage", None)
    variant = getattr(args, "variant", None) or "ca"
    if variant not in VARIANTS:
        raise ValueError(f"unknown stackgan variant {variant!r}: expected one of {VARIANTS}")
    if variant == "no-ca" and stage == 2:
        raise ValueError("the no-ca variant is a Stage-I ablation; train it with --stage 1")
    stages = (1,) if variant == "no-ca" else (1, 2) if stage is None else (stage,)
    results = {}
    if 1 in stages:
        results["stage1"] = _train_stage(profile, 1, out / "stage1", args, variant=variant)
    if 2 in stages:
        stage1 = getattr(args, "stage1", None) or results.get("stage1", {}).get("generator")
        results["stage2"] = _train_stage(profile, 2, out / "stage2", args, stage1_path=stage1)
    return results


def sample(args) -> str:
    G, _ = load_generator(args.weights, stage=args.stage)
    text_encoder, _ = load_encoders("joint")
    draw = lambda caps, seed: generate(G, caps, seed, text_encoder)  # noqa: E731
    return sample_grid(args, draw, "stackgan_samples.png")


# ------------------------------------------------------------------ measuring
EVAL_SIZE = 64  # the bird judge's and DAMSM's resolution


def evaluate_generator(G, n: int = 1000, split: str = "test", seed: int = 0) -> dict:
    """The birds protocol (``chapters.birds_eval``) on G's last stage at 64 px.

    A Stage-I generator's 16 or 32 px images are upsampled (bilinear) to 64 px: the Stage-II
    vs "Stage-I upsampled" comparison of the chapter.
    """
    from ganlab.chapters.birds_eval import evaluate_text_to_image

    text_encoder, _ = load_encoders("joint")
    fn = lambda caps, s: generate(G, caps, s, text_encoder, EVAL_SIZE)  # noqa: E731
    return evaluate_text_to_image(fn, n=n, split=split, seed=seed)


@torch.no_grad()
def caption_diversity(G, captions: list[str], per_caption: int = 16, seed: int = 0) -> dict:
    """Mean pairwise distance between ``per_caption`` samples of each caption, averaged.

    In the bird judge's features (a perceptual stand-in for LPIPS) and in pixels, at 64 px.
    Higher is more varied; compare models on the same captions and sample sizes.
    """
    from ganlab.chapters.birds_eval import _judge
    from ganlab.metrics.diversity import mean_pairwise_distance

    if per_caption < 2:
        raise ValueError(f"per_caption must be at least 2, got {per_caption}")
    text_encoder, _ = load_encoders("joint")
    judge = _judge()
    feats, pixels = [], []
    for i, caption in enumerate(captions):
        images = generate(G, [caption] * per_caption, seed + 1000 * i, text_encoder, EVAL_SIZE)
        feats.append(mean_pairwise_distance(judge.embed_images(images)))
        pixels.append(mean_pairwise_distance(images))
    return {
        "judge_features": sum(feats) / len(feats),
        "pixels": sum(pixels) / len(pixels),
        "captions": len(captions),
        "per_caption": per_caption,
    }


def diversity_captions(n: int = 50, split: str = "test") -> list[str]:
    """Caption 0 of the first ``n`` birds of ``split``: the diversity protocol's captions."""
    from ganlab.chapters.birds_eval import eval_captions

    return eval_captions(split, n)[0]


def evaluate(args) -> dict:
    stage = getattr(args, "stage", None) or 2
    G, meta = load_generator(args.weights, stage=stage)
    n = min(args.n, 2000)
    return {
        "chapter": CHAPTER,
        "weights": str(args.weights or f"shipped:{SHIPPED[stage]}"),
        "stage": meta["config"]["stage"],
        "image_size": meta["config"]["image_size"],
        "eval_size": EVAL_SIZE,
        "test": evaluate_generator(G, n, "test", args.seed),
        "zeroshot": evaluate_generator(G, n, "zeroshot", args.seed),
    }


def bench(args) -> dict:
    from ganlab.train.bench import bench_recipe

    profile = get_profile(args.profile)
    stage = getattr(args, "stage", None) or 2
    stage1 = None if stage == 1 else _bench_stage1(profile.name)
    recipe, cfg = recipe_and_config(profile.name, stage, progress=False, stage1_path=stage1)
    smoke = profile.name == "smoke"
    steps = args.steps or (3 if smoke else 20)
    model = f"stackgan.Stage{'I' * stage}Generator"
    return bench_recipe(recipe, cfg, profile.device, steps, 2 if smoke else 5, model, profile.name)


def _bench_stage1(profile: str) -> str | None:
    """The shipped Stage-I for cpu/smoke benches; the gpu profile's own size needs a fresh one."""
    if profile != "gpu":
        return None
    import tempfile

    recipe, _ = recipe_and_config("gpu", 1)
    G = recipe.build()["G"]
    path = Path(tempfile.mkdtemp()) / "stage1.safetensors"
    meta = {"chapter": CHAPTER, "kind": "weights", "config": recipe.config()}
    return str(ckpt.save_state(path, ckpt.module_tensors(G, "G"), meta))


def summary_metrics(result: dict) -> dict:
    """The headline numbers of one ``evaluate_generator`` result (what a manifest keeps)."""
    return {
        "text_alignment": result["text_alignment"]["value"],
        "chance": result["text_alignment"]["chance"],
        "frechet_distance": result["frechet_distance"]["value"],
        "real_vs_real": result["frechet_distance"]["real_vs_real"],
        "r_precision": result["r_precision"].get("value"),
        "n": result["n"],
    }


def ship_as(run, target: str, n: int = 1000, half: bool = False) -> dict:
    """Measure ``run``'s generator on test and zero-shot captions (and its diversity on 50
    test captions x 16) and ship it as ``target``, float16 when ``half``."""
    source = Path(run) / "generator.safetensors"
    G, _ = load_generator(source)
    metrics = {s: summary_metrics(evaluate_generator(G, n, s)) for s in ("test", "zeroshot")}
    metrics["diversity"] = caption_diversity(G, diversity_captions())
    ship_weights(source, target, metrics, n, half, eval_size=EVAL_SIZE)
    return metrics


def ship(args) -> dict:
    """``ganlab ship stackgan RUN``: a finished stage's run folder, shipped by what it holds.

    Stage-I and Stage-II ship as ``stackgan_stage1`` / ``stackgan_stage2``; the no-CA Stage-I
    ablation as ``stackgan_stage1_no_ca`` (float16).
    """
    cfg = ckpt.read_meta(Path(args.run) / "generator.safetensors")["config"]
    if cfg["stage"] == 1 and not cfg.get("use_ca", True):
        return ship_as(args.run, SHIPPED_NO_CA, args.n, half=True)
    return ship_as(args.run, SHIPPED[cfg["stage"]], args.n)
