"""Chapter 7, SPADE / GauGAN on the landscapes world: profiles, recipe, generation, evaluation.

The commands (``ganlab train/sample/evaluate/bench/ship spade``) are the course's generic ones
(:mod:`ganlab.chapters.commands`); this module declares what they need: ``CHAPTER``.

The recipe is the official ``Pix2PixModel`` trainer at the profile's sizes (see
:mod:`ganlab.models.spade` for every formula and deviation): one G step (hinge + feature
matching lambda 10 + perceptual lambda 10 + KL 0.05 in VAE mode), then one D step (hinge) on
a fake made without a graph; TTUR (Adam, G 1e-4, D 4e-4, betas (0, 0.9)); the learning rate
constant for the first half of the steps, then decaying linearly towards 0 (the official
``niter`` = ``niter_decay``, counted in steps); random horizontal flips (official default);
no EMA (the official trainer keeps none).

Variants: ``spade`` (the paper) and ``baseline``: the same trainer, D and losses, with
:class:`~ganlab.models.spade.InputMapGenerator`, the map fed only at the input and ordinary
BatchNorm after it (the paper's Table 1 argument), always without the encoder.

The perceptual term: no VGG19 weights are on disk, so ``perceptual="random"`` passes
:class:`~ganlab.models.spade.RandomFeatures` (a frozen VGG-shaped net with fixed random
weights); ``"none"`` leaves the term out (the official ``--no_vgg_loss``). The landscape
judge that scores the results is never used in training.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ganlab.chapters.contract import Chapter, Profile, split_overrides
from ganlab.data.landscapes import NUM_CLASSES, SEASONS, TIMES, load_landscapes, to_float
from ganlab.evaluation.landscapes import style_reference
from ganlab.models import spade as M
from ganlab.train.export import ModelSpec
from ganlab.train.loop import LoopSettings, Recipe, StepContext, TrainConfig, adam
from ganlab.validation import check_indices

NAME = "spade"
SHIPPED = "spade"  # ganlab/weights/spade.safetensors
VARIANTS = ("spade", "baseline")
PERCEPTUAL = ("random", "none")


@dataclass(frozen=True)
class SPADESettings:
    """The model side of a profile: image size, widths (ngf, ndf, SPADE's hidden width),
    G's number of upsamplings, the encoder (VAE mode), the perceptual stand-in, D's scales
    and layers, and how many training scenes of the world are used."""

    size: int = 64
    ngf: int = 16
    ndf: int = 32
    nhidden: int = 32
    num_upsampling_layers: str = "fewer"
    use_vae: bool = True
    z_dim: int = M.Z_DIM
    perceptual: str = "random"
    num_D: int = M.NUM_D
    n_layers_D: int = M.N_LAYERS_D
    n_train: int = 4000


# smoke: seconds on 2 cores; cpu: a few CPU-minutes at 64 px, ngf 12 so that the shipped
# float16 file (G at 16 ngf channels in its head, plus the encoder) stays under 10 MB;
# gpu: the paper's sizes; 10k steps x 32 / 177 img/s (H200, compiled) is about 30 minutes.
PROFILES = {
    "smoke": Profile(
        SPADESettings(32, 4, 8, 8, "fewer", True, 16, "random", 2, 3, 64), LoopSettings(4, 4, 2)
    ),
    "cpu": Profile(SPADESettings(64, 12, 16, 16, "fewer", True), LoopSettings(320, 8, 50)),
    "gpu": Profile(
        SPADESettings(256, 64, 64, 128, "normal", True, M.Z_DIM, "random", 2, 4, 20000),
        LoopSettings(10000, 32, 200),
    ),
}


def decay_schedule(step: int, total: int) -> float:
    """The learning-rate factor: 1 for the first half of the run, then linear towards 0
    (:func:`ganlab.models.spade.lr_factor` with niter = niter_decay = total / 2)."""
    niter = total // 2
    return M.lr_factor(step, niter, total - niter)


@dataclass
class SPADERecipe(Recipe):
    """SPADE (Park et al. 2019) on the landscapes world; see the module docstring."""

    size: int = 64
    ngf: int = 16
    ndf: int = 32
    nhidden: int = 32
    num_upsampling_layers: str = "fewer"
    use_vae: bool = True
    z_dim: int = M.Z_DIM
    perceptual: str = "random"
    num_D: int = M.NUM_D
    n_layers_D: int = M.N_LAYERS_D
    n_train: int = 4000
    variant: str = "spade"
    lr: float = M.LR
    lambda_feat: float = M.LAMBDA_FEAT
    lambda_vgg: float = M.LAMBDA_VGG
    lambda_kld: float = M.LAMBDA_KLD
    flip: bool = True
    chapter: str = field(default=NAME, init=False)
    ema_modules: tuple[str, ...] = field(default=(), init=False)  # the official keeps no EMA

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown spade variant {self.variant!r}: expected one of {VARIANTS}")
        if self.perceptual not in PERCEPTUAL:
            raise ValueError(
                f"unknown perceptual network {self.perceptual!r}: expected one of {PERCEPTUAL}"
            )
        if self.variant == "baseline":
            self.use_vae = False  # the baseline has no encoder: the map is its only input
        self._perceptual_net = M.RandomFeatures() if self.perceptual == "random" else None

    def config(self) -> dict:
        keys = ("variant", "size", "ngf", "ndf", "nhidden", "num_upsampling_layers", "use_vae",
                "z_dim", "perceptual", "num_D", "n_layers_D", "n_train", "lr", "lambda_feat",
                "lambda_vgg", "lambda_kld", "flip")  # fmt: skip
        return {k: getattr(self, k) for k in keys}

    def generator_spec(self) -> ModelSpec:
        if self.variant == "baseline":
            return ModelSpec.of(
                M.InputMapGenerator,
                label_nc=NUM_CLASSES,
                image_size=self.size,
                ngf=self.ngf,
                num_upsampling_layers=self.num_upsampling_layers,
            )
        G = ModelSpec.of(
            M.SPADEGenerator,
            label_nc=NUM_CLASSES,
            image_size=self.size,
            ngf=self.ngf,
            num_upsampling_layers=self.num_upsampling_layers,
            use_vae=self.use_vae,
            z_dim=self.z_dim,
            nhidden=self.nhidden,
        )
        kwargs = {"generator": G}
        if self.use_vae:
            kwargs["encoder"] = ModelSpec.of(
                M.ConvEncoder, image_size=self.size, ngf=self.ngf, z_dim=self.z_dim
            )
        return ModelSpec.of(M.SPADEPainter, **kwargs)

    def build(self):
        G = self.generator_spec().build()
        D = M.MultiscaleDiscriminator(
            NUM_CLASSES, ndf=self.ndf, num_D=self.num_D, n_layers=self.n_layers_D
        )
        return {"G": G, "D": D}

    def optimizers(self, modules, device):
        # TTUR: G (with E, one optimiser as official) at lr / 2, D at 2 lr, betas (0, 0.9)
        return {
            "G": adam(modules["G"].parameters(), self.lr / 2, M.BETAS, device),
            "D": adam(modules["D"].parameters(), self.lr * 2, M.BETAS, device),
        }

    def schedules(self):
        return {"G": decay_schedule, "D": decay_schedule}

    def data(self, device):
        data = load_landscapes(self.n_train, "train", self.size, progress=False)
        if self._perceptual_net is not None:
            self._perceptual_net.to(device)
        labels = check_indices(data.labels.long(), NUM_CLASSES, "the training maps' labels")
        return labels.to(device), data.images.to(device)

    def batch(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """A minibatch: one-hot maps (B, 10, S, S) and real images (B, 3, S, S) in [-1, 1],
        each pair mirrored with probability 1/2 when ``flip``."""
        labels_all, images_all = ctx.data
        idx = ctx.indices(len(labels_all))
        labels, real = labels_all[idx], to_float(images_all[idx])
        if self.flip:
            flip = torch.rand(len(idx), device=ctx.device) < 0.5
            labels = torch.where(flip[:, None, None], labels.flip(-1), labels)
            real = torch.where(flip[:, None, None, None], real.flip(-1), real)
        # the labels were range-checked once in data(): not again per step (a host sync on a GPU)
        return M.one_hot_segmap(labels, NUM_CLASSES, check_values=False), real

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        G, D = ctx.modules["G"], ctx.modules["D"]
        segmap, real = self.batch(ctx)

        # --- generator (the official order: G first). In VAE mode E encodes the real image;
        # the KL term keeps its posterior near N(0, I).
        mu = logvar = None
        with ctx.autocast():
            if self.use_vae:
                mu, logvar = ctx.raw["G"].encode(real)  # (B, z_dim) each
                fake = G(segmap, z=M.reparameterize(mu.float(), logvar.float()))
            else:
                fake = G(segmap)
            fake_out = D(segmap, fake)
            with torch.no_grad():  # the real features are constants in feature matching
                real_out = D(segmap, real)
        losses = M.generator_losses(
            fake_out,
            real_out,
            fake=fake.float(),
            real=real,
            perceptual_net=self._perceptual_net,
            mu=None if mu is None else mu.float(),
            logvar=None if logvar is None else logvar.float(),
            lambda_feat=self.lambda_feat,
            lambda_vgg=self.lambda_vgg,
            lambda_kld=self.lambda_kld,
        )
        ctx.update("G", losses["total"])

        # --- discriminator: hinge on the real pair and on a fake made without a graph
        with torch.no_grad(), ctx.autocast():
            if self.use_vae:
                mu2, logvar2 = ctx.raw["G"].encode(real)
                fake = G(segmap, z=M.reparameterize(mu2, logvar2))
            else:
                fake = G(segmap)
        with ctx.autocast():
            loss_d = M.d_hinge_loss(D(segmap, real), D(segmap, fake.detach()))
        ctx.update("D", loss_d)
        out = {f"G_{k}": v.detach() for k, v in losses.items()}
        out["D_hinge"] = loss_d.detach()
        return out


def recipe_and_config(profile: str, **overrides) -> tuple[SPADERecipe, TrainConfig]:
    """The recipe and loop config of a profile, with overrides (model settings, ``variant``,
    loop and run fields: ``steps``, ``out``, ``resume``...)."""
    model, loop, rest = split_overrides(PROFILES[profile], overrides)
    rest.pop("data_root", None)  # the landscapes world is drawn, never read from disk
    recipe = SPADERecipe(**dataclasses.asdict(model), **rest)
    return recipe, PROFILES[profile].loop.config(profile, **loop)


# ------------------------------------------------------------------ generation
def load_generator(path=None, device="cpu") -> tuple[torch.nn.Module, dict]:
    """A generator from exported weights or a checkpoint; ``None``: the shipped weights."""
    return CHAPTER.load(path, device)


def image_size(G) -> int:
    """The (square) size G paints at."""
    return int(G.image_size[0])


@torch.no_grad()
def generate(G, labels, seed: int = 0, style_images=None, batch: int = 100) -> torch.Tensor:
    """Images (N, 3, S, S) in [-1, 1] for maps ``labels`` (N, S, S) class ids.

    VAE mode: a random style per image (z ~ N(0, I) from ``seed``), or the style of
    ``style_images`` (N, 3, S, S) (the encoder's mean). Without VAE (and the baseline) the
    map alone decides: ``seed`` changes nothing, and ``style_images`` is refused.
    """
    labels = torch.as_tensor(labels)
    if labels.ndim != 3 or labels.shape[-2:] != G.image_size:
        raise ValueError(
            f"labels must be (N, {image_size(G)}, {image_size(G)}) class ids at G's size, "
            f"got {tuple(labels.shape)}"
        )
    vae = getattr(G, "use_vae", False)
    if style_images is not None and not vae:
        raise ValueError("style images need a generator trained with the encoder (use_vae)")
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    G.eval()
    outs = []
    for s in range(0, len(labels), batch):
        segmap = M.one_hot_segmap(labels[s : s + batch].long(), NUM_CLASSES).to(device)
        if style_images is not None:
            outs.append(G(segmap, style_image=style_images[s : s + batch].to(device)).cpu())
        elif vae:
            z = torch.randn(len(segmap), G.netG.z_dim, generator=gen).to(device)
            outs.append(G(segmap, z=z).cpu())
        else:
            outs.append(G(segmap).cpu())
    return torch.cat(outs).float()


def painter(G):
    """``generate(maps, seed=0, style_images=None)`` bound to G, for the figures."""
    return lambda labels, seed=0, style_images=None: generate(G, labels, seed, style_images)


def map_painter(G, seed: int = 0):
    """The lecture's "paint a map, get a picture" explorer on G (see
    :func:`ganlab.viz.landscapes.map_painter`)."""
    from ganlab.viz.landscapes import map_painter as explorer

    return explorer(painter(G), image_size(G), getattr(G, "use_vae", False), seed=seed)


def painted_figure(G, labels, styles, seeds: int = 4, title: str | None = None):
    """The painted-map figure of G (see :func:`ganlab.viz.landscapes.painted_figure`)."""
    from ganlab.viz.landscapes import painted_figure as figure

    return figure(painter(G), labels, styles if getattr(G, "use_vae", False) else [], seeds, title)


def parse_style(text: str):
    """``"evening,winter"`` -> :class:`~ganlab.data.landscapes.Style` (time, season)."""
    from ganlab.data.landscapes import Style

    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or parts[0] not in TIMES or parts[1] not in SEASONS:
        raise ValueError(
            f"--style must be TIME,SEASON with TIME in {', '.join(TIMES)} and SEASON in "
            f"{', '.join(SEASONS)}, got {text!r}"
        )
    return Style(time=parts[0], season=parts[1])


def read_map(path, size: int) -> torch.Tensor:
    """A painted map from a PNG: class ids (values 0..9, grey or palette) or the colours of
    ``LEGEND`` (each pixel takes the nearest legend colour); resized to ``size`` with NEAREST
    (labels stay labels). -> (size, size) int64."""
    from PIL import Image

    from ganlab.data.landscapes import LEGEND

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--map {str(path)!r}: no such file")
    try:
        img = Image.open(path)
        img.load()
    except Exception as e:  # PIL raises several kinds for a file that is not an image
        raise ValueError(f"--map {str(path)!r} is not a readable image: {e}") from e
    if img.mode in ("L", "P", "I", "I;16") and np.asarray(img).max() < NUM_CLASSES:
        ids = np.asarray(img).astype(np.int64)
    else:
        rgb = np.asarray(img.convert("RGB")).astype(np.float64)  # (H, W, 3) 0..255
        legend = np.asarray(LEGEND, dtype=np.float64)
        legend = legend * 255 if legend.max() <= 1 else legend
        dist = ((rgb[:, :, None, :] - legend[None, None]) ** 2).sum(-1)  # (H, W, 10)
        ids = dist.argmin(-1)
    t = torch.from_numpy(ids)[None, None].float()
    t = torch.nn.functional.interpolate(t, size=(size, size), mode="nearest")
    return t[0, 0].long()


# ------------------------------------------------------------------ the contract
class SPADEChapter(Chapter):
    """Chapter 7's contract: landscapes world, semantic maps as the conditions."""

    name = NAME
    world = "landscapes"
    profiles = PROFILES
    shipped = SHIPPED
    sample_out = "spade_samples.png"
    bench_steps = (10, 3)
    bench_steps_smoke = (3, 1)
    eval_limit = 2000

    def recipe(self, profile, **overrides):
        return recipe_and_config(profile, **overrides)

    def add_options(self, command, parser) -> None:
        if command == "train":
            parser.add_argument("--variant", help=f"one of {', '.join(VARIANTS)}")
        if command == "sample":
            parser.add_argument(
                "--map",
                action="append",
                help="a painted map PNG (class ids 0-9, or the legend's colours; repeatable); "
                "default: the painted demo map and three held-out maps",
            )
            parser.add_argument(
                "--style",
                action="append",
                help="TIME,SEASON (e.g. evening,winter; repeatable): the encoder reads the "
                "world's rendering of the map in that style; default: random styles",
            )

    def train_options(self, args) -> dict:
        return {"variant": getattr(args, "variant", None)}

    def manifest_extra(self, recipe) -> dict:
        return {"variant": recipe.variant}

    def generator(self, G, meta, for_evaluation=False):
        return lambda labels, seed: generate(G, labels, seed)

    def sample_maps(self, G, args) -> torch.Tensor:
        from ganlab.data.landscapes import painted_map

        size = image_size(G)
        if args.map:
            return torch.stack([read_map(p, size) for p in args.map])
        test = load_landscapes(3, "test", size, progress=False).labels.long()
        return torch.cat([torch.from_numpy(painted_map(size).astype(np.int64))[None], test])

    def sample_count(self, args) -> int:
        per_map = len(args.style) if args.style else args.n
        return (len(args.map) if args.map else 4) * per_map

    def sample_images(self, G, meta, args):
        styles = [parse_style(s) for s in args.style or ()]
        if styles and not getattr(G, "use_vae", False):
            raise ValueError("--style needs weights trained with the encoder (use_vae)")
        maps = self.sample_maps(G, args)
        rows = []
        for labels in maps:
            if styles:
                refs = torch.cat([style_reference(labels, s) for s in styles])
                rows.append(generate(G, labels.expand(len(styles), -1, -1), style_images=refs))
            else:
                rows.append(generate(G, labels.expand(args.n, -1, -1), seed=args.seed))
        per_row = len(styles) or args.n
        what = f"{len(maps)} maps x " + (
            f"{len(styles)} styles" if styles else f"{args.n} random styles"
        )
        return torch.cat(rows), per_row, what

    def evaluate(self, G, meta, n, seed) -> dict:
        from ganlab.evaluation.landscapes import evaluate_map_to_image

        return evaluate_map_to_image(
            lambda labels, s, style_images=None: generate(G, labels, s, style_images),
            n=n,
            size=image_size(G),
            seed=seed,
            multimodal=getattr(G, "use_vae", False),
        )

    def ship_measure(self, G, meta, n):
        from ganlab.evaluation.landscapes import summary_metrics

        return summary_metrics(self.evaluate(G, meta, n, 0)), {}

    def ship_target(self, meta, args: argparse.Namespace):
        variant = meta.get("config", {}).get("variant", "spade")
        return (SHIPPED if variant == "spade" else f"{SHIPPED}_{variant}"), True  # float16


CHAPTER = SPADEChapter()

__all__ = [
    "CHAPTER",
    "PROFILES",
    "SPADERecipe",
    "SPADESettings",
    "generate",
    "load_generator",
    "map_painter",
    "painted_figure",
    "parse_style",
    "read_map",
    "style_reference",
]
