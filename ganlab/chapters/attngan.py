"""Chapter 4, AttnGAN on the birds world: recipe, sampling, evaluation and benchmark.

The text features of an image are the frozen DAMSM text encoder's sentence vector and word
features of one of its 10 captions, picked at random every step (as the official code). G
has three stages (s0, 2 s0, 4 s0); each has its own discriminator, trained on real birds
drawn at that size. G's loss adds lambda times the DAMSM loss of its LAST image, computed
with the frozen DAMSM image encoder; ``variant="no-damsm"`` sets lambda to 0 (the ablation).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganlab.chapters.birds_commands import finish_training, sample_grid, ship_weights
from ganlab.data.birds import load_birds
from ganlab.models import attngan as M
from ganlab.profiles import get_profile
from ganlab.text.damsm import damsm_loss
from ganlab.text.train import load_encoders, tokenize_all
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import Recipe, StepContext, TrainConfig, Trainer, adam

CHAPTER = "attngan"
SHIPPED = "attngan"  # ganlab/weights/attngan.safetensors
SHIPPED_NO_DAMSM = "attngan_no_damsm"
VARIANTS = ("damsm", "no-damsm")
EVAL_SIZE = 64  # the bird judge's and DAMSM's resolution

PROFILES = {
    "smoke": dict(base_size=16, ngf=4, ndf=4, steps=4, batch_size=8, n_birds=64, log_every=2),
    "cpu": dict(
        base_size=16, ngf=16, ndf=8, steps=2000, batch_size=32, n_birds=10000, log_every=50
    ),
    "gpu": dict(
        base_size=64, ngf=32, ndf=64, steps=20000, batch_size=20, n_birds=20000, log_every=100
    ),
}


@dataclass
class AttnGANRecipe(Recipe):
    """Xu et al.'s AttnGAN; Adam 2e-4, betas (0.5, 0.999) for G and every D (the paper's)."""

    variant: str = "damsm"
    base_size: int = 64
    ngf: int = 32
    ndf: int = 64
    num_stages: int = 3
    num_residual: int = 2
    n_birds: int = 10000
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    lambda_damsm: float = M.LAMBDA_DAMSM
    encoder_path: str | None = None
    chapter: str = field(default=CHAPTER, init=False)

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(
                f"unknown attngan variant {self.variant!r}: expected one of {VARIANTS}"
            )
        if self.variant == "no-damsm":
            self.lambda_damsm = 0.0

    @property
    def image_sizes(self) -> list[int]:
        return [self.base_size * 2**i for i in range(self.num_stages)]

    @property
    def d_names(self) -> list[str]:
        return [f"D{i}" for i in range(self.num_stages)]

    def config(self) -> dict:
        keys = ("variant", "base_size", "ngf", "ndf", "num_stages", "num_residual")
        keys += ("lambda_damsm", "lr")
        return {k: getattr(self, k) for k in keys} | {"betas": list(self.betas)}

    def build(self):
        G = M.Generator(
            ngf=self.ngf, base_size=self.base_size, num_stages=self.num_stages,
            num_residual=self.num_residual,
        )  # fmt: skip
        Ds = M.build_discriminators(self.base_size, self.num_stages, self.ndf)
        return {"G": G, **dict(zip(self.d_names, Ds))}

    def optimizers(self, modules, device):
        return {k: adam(modules[k].parameters(), self.lr, self.betas, device) for k in modules}

    def data(self, device):
        birds = {s: load_birds(self.n_birds, "train", s) for s in self.image_sizes}
        text_enc, image_enc = load_encoders("damsm", self.encoder_path, device=device)
        last = birds[self.image_sizes[-1]]
        ids, lengths = tokenize_all(text_enc.vocab, last.captions)
        return {
            "images": [birds[s].images.to(device) for s in self.image_sizes],  # uint8 per stage
            "species": last.species.to(device),
            "ids": ids.to(device),  # (N, 10, L)
            "lengths": lengths,  # (N, 10), on the CPU: packing the LSTM's input reads them there
            "text_encoder": text_enc.model,
            "image_encoder": image_enc,
        }

    def text(self, data, idx: torch.Tensor):
        """(B,) image indices ON THE CPU -> sentence (B, D), words (B, D, L), lengths (B,),
        padding (B, L), on the data's device.

        The indices and the caption lengths stay on the CPU, where ``pack_padded_sequence``
        needs the lengths, and only travel to the device (``non_blocking``): reading them
        back from a GPU would stall the step on the GPU's queue (a host sync).
        """
        if idx.device.type != "cpu":
            raise ValueError(f"text() takes the batch's indices on the CPU, got {idx.device}")
        device = data["ids"].device
        pick = torch.randint(0, data["ids"].shape[1], idx.shape)  # one of each image's captions
        lengths_cpu = data["lengths"][idx, pick]  # (B,)
        ids = data["ids"][idx.to(device, non_blocking=True), pick.to(device, non_blocking=True)]
        with torch.no_grad():  # frozen; the data were validated when tokenised
            words, sentence = data["text_encoder"](ids, lengths_cpu, check=False)
        lengths = lengths_cpu.to(device, non_blocking=True)
        padding = torch.arange(ids.shape[1], device=device)[None] >= lengths[:, None]
        return sentence, words, lengths, padding

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        G, data = ctx.modules["G"], ctx.data
        idx_cpu = torch.randint(0, len(data["species"]), (ctx.batch_size,))  # see text()
        idx = idx_cpu.to(ctx.device, non_blocking=True)
        xs = [im[idx].float().div(127.5).sub(1) for im in data["images"]]  # per stage
        sentence, words, lengths, padding = self.text(data, idx_cpu)
        z = torch.randn(ctx.batch_size, ctx.raw["G"].z_dim, device=ctx.device)
        with ctx.autocast():
            fakes, _, mu, logvar = G(z, sentence, words, padding)

        # --- every D_i: real/right, fake/right and real/wrong (image i, caption i+1)
        loss_d = 0.0
        for name, x, fake in zip(self.d_names, xs, fakes):
            D = ctx.modules[name]
            with ctx.autocast():
                real_u, real_c, wrong_c = D(x, sentence, wrong=True)
                fake_u, fake_c = D(fake.detach(), sentence)
            loss_i = M.discriminator_loss(
                real_u.float(), real_c.float(), fake_u.float(), fake_c.float(), wrong_c.float()
            )
            ctx.opts[name].zero_grad(set_to_none=True)
            loss_i.backward()
            ctx.opts[name].step()
            loss_d = loss_d + loss_i.detach()

        # --- G: fool every D_i, match the words (DAMSM on the last image), stay near N(0, I)
        with ctx.autocast():
            pairs = [ctx.modules[n](fake, sentence) for n, fake in zip(self.d_names, fakes)]
        pairs = [(u.float(), c.float()) for u, c in pairs]
        damsm = None
        if self.lambda_damsm:
            regions, global_ = data["image_encoder"](fakes[-1].float())
            damsm = damsm_loss(
                words, sentence, regions, global_, lengths, data["species"][idx], check=False
            )
            damsm = damsm["total"]
        loss_g = M.generator_loss(pairs, mu.float(), logvar.float(), damsm, self.lambda_damsm)
        ctx.opts["G"].zero_grad(set_to_none=True)
        loss_g.backward()
        ctx.opts["G"].step()
        out = {
            "loss_D": loss_d,
            "loss_G": loss_g.detach(),
            "KL": M.kl_divergence(mu.detach().float(), logvar.detach().float()),
        }
        if damsm is not None:
            out["DAMSM"] = damsm.detach()
        return out


def recipe_and_config(profile: str, **overrides) -> tuple[AttnGANRecipe, TrainConfig]:
    s = dict(PROFILES[profile])
    s.update({k: v for k, v in overrides.items() if v is not None})
    recipe = AttnGANRecipe(
        variant=s.get("variant") or "damsm", base_size=s["base_size"], ngf=s["ngf"],
        ndf=s["ndf"], n_birds=s["n_birds"],
    )  # fmt: skip
    cfg = TrainConfig.from_settings(s, profile)
    return recipe, cfg


# ------------------------------------------------------------------ weights
BN_BATCHES = 20  # batches of 32 for the generator's standing BatchNorm statistics


@torch.no_grad()
def standing_statistics(G, recipe: AttnGANRecipe, data, device, batches: int = BN_BATCHES):
    """Recompute G's BatchNorm statistics on fresh (z, caption) batches."""
    from ganlab.train.ema import recalibrate_batchnorm

    gen = torch.Generator().manual_seed(0)
    inputs = []
    for _ in range(batches):
        idx = torch.randint(0, len(data["species"]), (32,), generator=gen)
        sentence, words, _, padding = recipe.text(data, idx)
        inputs.append(
            (torch.randn(32, G.z_dim, generator=gen).to(device), sentence, words, padding)
        )
    return recalibrate_batchnorm(G, inputs)


def export_generator(trainer: Trainer, path, manifest: dict) -> Path:
    """The EMA generator, with standing BatchNorm statistics, and its manifest."""
    G = trainer.generator("G")
    standing_statistics(G, trainer.recipe, trainer.recipe.data(trainer.device), trainer.device)
    meta = {
        "chapter": CHAPTER,
        "kind": "weights",
        "model": "attngan.Generator",
        "config": trainer.recipe.config(),
        "manifest": {**manifest, "batchnorm": f"standing statistics, {BN_BATCHES} batches of 32"},
    }
    return ckpt.save_state(path, ckpt.module_tensors(G, "G"), meta)


def load_generator(path=None, device="cpu") -> tuple[M.Generator, dict]:
    """A generator from exported weights or a checkpoint (its EMA copy); None: shipped."""
    if path is None:
        from ganlab.weights import shipped

        path = shipped(SHIPPED)
    meta = ckpt.read_meta(path)
    if meta.get("chapter") != CHAPTER:
        raise ckpt.CheckpointError(f"{path} holds chapter {meta.get('chapter')!r}, not {CHAPTER!r}")
    cfg = meta["config"]
    keep = ("variant", "base_size", "ngf", "ndf", "num_stages", "num_residual")
    G = AttnGANRecipe(**{k: cfg[k] for k in keep}).build()["G"]
    tensors, meta = ckpt.load_state(path)
    prefix = "ema.G" if any(k.startswith("ema.G.") for k in tensors) else "G"
    ckpt.load_module(G, tensors, prefix)
    return G.to(device).eval(), meta


@torch.no_grad()
def generate_all(G, captions: list[str], seed: int = 0, text_encoder=None):
    """Every stage's images and attention maps for ``captions``, reproducibly from ``seed``.

    -> (images [(N, 3, s0, s0), ...], attention [(N, T, s0, s0), (N, T, 2 s0, 2 s0)],
    the caption features), on the CPU.
    """
    if text_encoder is None:
        text_encoder, _ = load_encoders("damsm")
    device = next(G.parameters()).device
    feats = text_encoder(captions).to(device)
    gen = torch.Generator(device=device).manual_seed(seed)
    z = torch.randn(len(captions), G.z_dim, generator=gen, device=device)
    images, attention, _, _ = G(z, feats.sentence, feats.words, feats.padding, gen)
    return [x.float().cpu() for x in images], [a.float().cpu() for a in attention], feats


def generate(G, captions: list[str], seed: int = 0, text_encoder=None) -> torch.Tensor:
    """The last stage's images, one per caption; (N, 3, 4 s0, 4 s0) in [-1, 1]."""
    return generate_all(G, captions, seed, text_encoder)[0][-1].clamp(-1, 1)


def caption_tokens(text_encoder, caption: str) -> list[str]:
    """The words of ``caption`` as the encoder reads them (unknown words as ``<unk>``,
    at most 18): the labels of the attention maps."""
    ids, lengths = text_encoder.vocab.encode([caption])
    return [text_encoder.vocab.itos[i] for i in ids[0, : int(lengths[0])].tolist()]


@functools.cache
def _kind_words() -> tuple[frozenset, frozenset]:
    """The grammar's colour words and body-part nouns (built once)."""
    from ganlab.data.birds import captions as grammar

    colours = {w for words in grammar.COLOR_WORDS.values() for w in words}
    parts = {w for nouns, _ in grammar.PART_NOUNS.values() for n in nouns for w in n.split()}
    parts |= {w for n in grammar.BEAK_NOUNS + grammar.EYE_NOUNS for w in n.split()}
    return frozenset(colours), frozenset(parts - {"feathers", "ring"})


def word_kind(word: str) -> str:
    """A word's kind: "colour", "part" (a body-part noun) or "other" (function words...)."""
    colours, parts = _kind_words()
    return "colour" if word in colours else "part" if word in parts else "other"


@torch.no_grad()
def attention_by_word_kind(G, captions: list[str], seed: int = 0, text_encoder=None) -> dict:
    """How much attention each kind of word gets, per attention stage.

    For every real word of every caption: its mean attention over the stage's pixels times
    the caption's length (its *lift*: 1 = the uniform share, 2 = twice it), and its peak
    (the most attentive pixel's weight). -> {stage: {kind: {"lift", "peak", "words"}}}
    averaged over the words of that kind; ``n_captions`` records the sample size.
    """
    if text_encoder is None:
        text_encoder, _ = load_encoders("damsm")
    _, attention, feats = generate_all(G, captions, seed, text_encoder)
    ids, _ = text_encoder.vocab.encode(captions)
    kinds = [[word_kind(text_encoder.vocab.itos[i]) for i in row] for row in ids.tolist()]
    out = {"n_captions": len(captions)}
    for stage, a in enumerate(attention, start=1):  # (N, T, S, S)
        mean, peak = a.flatten(2).mean(2), a.flatten(2).amax(2)  # (N, T)
        lift = mean * feats.lengths[:, None].float().cpu()
        rows = {}
        for kind in ("colour", "part", "other"):
            sel = (
                torch.tensor([[k == kind for k in ks] for ks in kinds]) & ~feats.padding.cpu()
            )  # real words of this kind
            rows[kind] = {
                "lift": float(lift[sel].mean()) if sel.any() else float("nan"),
                "peak": float(peak[sel].mean()) if sel.any() else float("nan"),
                "words": int(sel.sum()),
            }
        out[f"stage {stage}"] = rows
    return out


def add_condition_arguments(parser) -> None:
    parser.add_argument("--caption", action="append", help="caption(s) to draw (repeatable)")
    parser.add_argument("--n", type=int, default=8, help="samples per caption (default 8)")
    parser.add_argument("--seed", type=int, default=0)


def train(args) -> dict:
    profile = get_profile(args.profile)
    print(profile.describe())
    recipe, cfg = recipe_and_config(
        profile.name, steps=args.steps, out=args.out or "runs/attngan", resume=args.resume,
        seed=getattr(args, "seed", None), variant=getattr(args, "variant", None),
    )  # fmt: skip
    print(f"AttnGAN: {json.dumps(recipe.config())}")
    trainer = Trainer(recipe, cfg, device=profile.device)
    result = trainer.fit()
    return finish_training(
        args, CHAPTER, profile, trainer, result, export_generator, variant=recipe.variant
    )


def sample(args) -> str:
    G, _ = load_generator(args.weights)
    text_encoder, _ = load_encoders("damsm")
    draw = lambda caps, seed: generate(G, caps, seed, text_encoder)  # noqa: E731
    return sample_grid(args, draw, "attngan_samples.png")


def evaluate_generator(G, n: int = 1000, split: str = "test", seed: int = 0) -> dict:
    """The birds protocol (``chapters.birds_eval``) on G's last stage."""
    from ganlab.chapters.birds_eval import evaluate_text_to_image

    text_encoder, _ = load_encoders("damsm")
    fn = lambda caps, s: generate(G, caps, s, text_encoder)  # noqa: E731
    return evaluate_text_to_image(fn, n=n, split=split, seed=seed)


def evaluate(args) -> dict:
    G, meta = load_generator(args.weights)
    n = min(args.n, 2000)
    return {
        "chapter": CHAPTER,
        "weights": str(args.weights or f"shipped:{SHIPPED}"),
        "variant": meta["config"]["variant"],
        "image_size": G.image_sizes[-1],
        "test": evaluate_generator(G, n, "test", args.seed),
        "zeroshot": evaluate_generator(G, n, "zeroshot", args.seed),
    }


def bench(args) -> dict:
    from ganlab.train.bench import bench_recipe

    profile = get_profile(args.profile)
    recipe, cfg = recipe_and_config(profile.name, progress=False)
    smoke = profile.name == "smoke"
    steps = args.steps or (3 if smoke else 20)
    model = "attngan.Generator"
    return bench_recipe(recipe, cfg, profile.device, steps, 2 if smoke else 5, model, profile.name)


def ship(args) -> dict:
    """``ganlab ship attngan RUN``: measure the run's generator and ship it (the ``no-damsm``
    ablation as ``attngan_no_damsm``, float16)."""
    from ganlab.chapters.stackgan import summary_metrics

    source = Path(args.run) / "generator.safetensors"
    G, meta = load_generator(source)
    metrics = {s: summary_metrics(evaluate_generator(G, args.n, s)) for s in ("test", "zeroshot")}
    main = meta["config"]["variant"] == "damsm"
    ship_weights(source, SHIPPED if main else SHIPPED_NO_DAMSM, metrics, args.n, half=not main)
    return metrics
