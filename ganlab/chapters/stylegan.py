r"""Chapter 6, StyleGAN on the faces world: its profiles, recipe, generation and the paper's
measurements (style mixing table, noise, truncation, PPL).

The commands (``ganlab train/sample/evaluate/bench/ship stylegan``) are the course's generic
ones (:mod:`ganlab.chapters.commands`); this module declares what they need: ``CHAPTER``.
``ganlab sample stylegan --psi 0.7`` draws with truncation in W; ``--mix SEED`` draws the
paper's style-mixing figure: sources A (``--seed``), sources B (``SEED``), then A with B's
coarse, middle and fine styles.

**The training step** is the official ``G_style`` / ``D_basic`` pair with the FFHQ loss
(``G_logistic_ns`` and ``D_logistic_simplegp``): D on one minibatch of reals and of fakes
(style mixing with probability 0.9 in both G passes, w_avg updated in both, as the official
graph), R1 on the reals in float32 outside autocast at every step (StyleGAN 1 has no lazy
regularisation), then G on a fresh z. Adam (lr 1e-3, betas (0, 0.99)) for both; the mapping
network's 100x smaller learning rate is inside its equalised layers (``lr_mul`` 0.01).

**R1's gamma** at this scale: the paper's 10 at 1024 px, scaled by the pixel count, gives
:func:`ganlab.models.stylegan.r1_gamma` = 0.0098 at 32 px; the course's FIDELITY guide puts
it at 0.05-1 for 32-64 px, and StyleGAN2-ADA used 0.01 for CIFAR-10. The cpu profile uses
**10**, the paper's value unscaled (rosinality/style-based-gan-pytorch also keeps 10 at every
resolution), above the guide's range because the course's 3,000-step runs measured it (judge
FD on n = 1,000 test faces; perceptual diversity over 500 pairs, real faces 5.02): gamma 0.05
left D winning (mean logits +4.6 / -3.3), FD 151.0, diversity 2.21; gamma 1 gave FD 112.7,
diversity 3.50, samples close to one template; gamma 10 gave FD 90.9, diversity 4.50, cat
faces that differ in colour, pose and background. At gamma 1 the mapping network was not
what limited the run: a 2-layer one and a 10x learning-rate multiplier both collapsed alike
(diversity 3.25 and 3.24 when stopped at steps 1,500 and 1,313). The runs' table:
``book/figures/stylegan_runs.json`` (:mod:`ganlab.experiments.stylegan_runs`).
``ganlab train stylegan --r1-gamma G`` (and ``--mapping-layers``, ``--mapping-lr-mul``)
change them.

**The style-mixing table** (:func:`mixing_table`): for n pairs of sources (A, B), each band's
styles (coarse, middle, fine; :func:`ganlab.models.stylegan.style_groups`) are copied from B
into A with the noise fixed; the face judge reads A, B and the mix, and for each factor group
the table gives the fraction of mixes whose reading follows B: for an angle, the mix is closer
to B's reading than to A's; for a categorical factor, among the pairs where A and B differ,
the mix reads B's value. The world's own coarse / middle / fine factor levels
(``ganlab.data.faces.LEVELS``) are the groups the paper's Fig. 3 names: pose and face shape
(coarse), eyes, muzzle and markings (middle), colours (fine).

Scaled values (the model's deviations table in :mod:`ganlab.models.stylegan` has the rest):

=====================  ==================================  ====================================
what                   paper / official code               this chapter (cpu profile)
=====================  ==================================  ====================================
resolution             1024 px (FFHQ)                      32 px (smoke 16, gpu 64)
widths                 fmap_base 8192, fmap_max 512        fmap_base 1024, fmap_max 64: 64
                                                           channels at every resolution
z, w                   512, 512; mapping 8 x 512            64, 64; mapping 8 x 64 (lr_mul 0.01)
style layers           18                                  8 (4, 4, 8, 8, 16, 16, 32, 32 px)
R1 gamma               10 (1024 px)                        10 (area-scaled 0.0098; see above)
minibatch              32 at 64 px and up (8 GPUs)          32
G's EMA                half-life 10k images                the same: 0.5 ** (32 / 10,000) =
                                                           0.99778 per step
training images        FFHQ 70,000                         10,000 faces of the world (train)
run length             25,000k images                      3,000 steps (96k images)
=====================  ==================================  ====================================
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import torch

from ganlab.chapters.contract import Chapter, Profile, split_overrides
from ganlab.models import stylegan as M
from ganlab.nn import check_r1_gamma, r1_penalty
from ganlab.train.export import ModelSpec
from ganlab.train.loop import LoopSettings, Recipe, StepContext, TrainConfig, adam

NAME = "stylegan"
SHIPPED = "stylegan"  # ganlab/weights/stylegan.safetensors
RECHECK_N = 500  # samples the shipped-weights test re-measures (the manifest holds both)
MIXING_N = 200  # source pairs of the shipped mixing table
BANDS = ("coarse", "middle", "fine")
POSE = ("yaw", "pitch", "roll")
FACTOR_GROUPS = {
    "pose": POSE,
    "face_shape": ("face_shape",),
    "colours": ("base", "secondary", "eye_color", "background"),
}
"""What the mixing table reports, as the judge reads it: the paper's 'pose' and 'face shape'
(coarse styles) and 'colour scheme' (fine styles)."""
MIN_ANGLE_GAP = 0.05
"""Radians (2.9 degrees, about 1.5 x the judge's mean error on yaw and pitch): a pair whose
sources read closer than this in an angle does not count for that angle in the table."""


@dataclass(frozen=True)
class StyleGANSettings:
    """The model side of a profile: ``resolution``, the width formula's ``fmap_base`` /
    ``fmap_max``, the latent sizes ``z_dim`` = ``w_dim``, the mapping depth, style mixing's
    probability, R1's ``r1_gamma`` (None: the area-scaled :func:`M.r1_gamma`), the
    minibatch-stddev group and how many training faces."""

    resolution: int = 32
    fmap_base: int = 1024
    fmap_max: int = 64
    z_dim: int = 64
    mapping_layers: int = M.MAPPING_LAYERS
    mapping_lr_mul: float = M.MAPPING_LR_MUL
    style_mixing_prob: float = M.STYLE_MIXING_PROB
    r1_gamma: float | None = 10.0
    mbstd_group_size: int = M.MBSTD_GROUP_SIZE
    n_faces: int = 10000


# smoke: seconds on 2 cores; cpu: 32 px, ~1 s a step on one busy CPU thread (about 52 min);
# gpu: 64 px, 256 channels, z = w = 256 (R1 gamma 0.2: not re-measured on a GPU).
PROFILES = {
    "smoke": Profile(
        StyleGANSettings(16, fmap_base=128, fmap_max=16, z_dim=16, mapping_layers=2, n_faces=256),
        LoopSettings(6, 8, 3),
    ),
    "cpu": Profile(StyleGANSettings(32, 1024, 64, 64), LoopSettings(3000, 32, 50)),
    "gpu": Profile(
        StyleGANSettings(64, 4096, 256, 256, r1_gamma=0.2, n_faces=30000),
        LoopSettings(40000, 32, 100),
    ),
}


@dataclass
class StyleGANRecipe(Recipe):
    """Karras et al.'s style-based generator with PGGAN's D (+ blur), the non-saturating
    logistic loss with R1 on the reals, Adam (lr 1e-3, betas (0, 0.99)) and G's EMA."""

    resolution: int = 32
    fmap_base: int = 1024
    fmap_max: int = 64
    z_dim: int = 64
    mapping_layers: int = M.MAPPING_LAYERS
    mapping_lr_mul: float = M.MAPPING_LR_MUL
    style_mixing_prob: float = M.STYLE_MIXING_PROB
    r1_gamma: float | None = 10.0
    mbstd_group_size: int = M.MBSTD_GROUP_SIZE
    n_faces: int = 10000
    data_root: str | None = None
    chapter: str = field(default=NAME, init=False)

    def __post_init__(self) -> None:
        M.resolution_log2(self.resolution)
        if self.r1_gamma is None:
            self.r1_gamma = M.r1_gamma(self.resolution)
        check_r1_gamma(self.r1_gamma)
        if not 0 < self.mapping_lr_mul <= 1:
            raise ValueError(f"mapping_lr_mul must be in (0, 1], got {self.mapping_lr_mul}")
        if self.mapping_layers < 1:
            raise ValueError(f"mapping_layers must be >= 1, got {self.mapping_layers}")

    def config(self) -> dict:
        return {
            "resolution": self.resolution,
            "fmap_base": self.fmap_base,
            "fmap_max": self.fmap_max,
            "z_dim": self.z_dim,
            "mapping_layers": self.mapping_layers,
            "mapping_lr_mul": self.mapping_lr_mul,
            "style_mixing_prob": self.style_mixing_prob,
            "r1_gamma": self.r1_gamma,
            "r1_gamma_area_scaled": M.r1_gamma(self.resolution),
            "mbstd_group_size": self.mbstd_group_size,
            "n_faces": self.n_faces,
            "data": self.data_root or "faces world",
        }

    def generator_spec(self) -> ModelSpec:
        return ModelSpec.of(
            M.Generator,
            resolution=self.resolution,
            z_dim=self.z_dim,
            w_dim=self.z_dim,
            mapping_layers=self.mapping_layers,
            mapping_lr_mul=self.mapping_lr_mul,
            fmap_base=self.fmap_base,
            fmap_max=self.fmap_max,
            style_mixing_prob=self.style_mixing_prob,
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

    def data(self, device):
        """The training faces as uint8 (N, 3, S, S), on ``device``."""
        from ganlab.data.faces import training_images

        return training_images(self.n_faces, self.resolution, self.data_root).to(device)

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        from ganlab.data.faces.dataset import to_float

        G, D = ctx.modules["G"], ctx.modules["D"]
        n, dev = ctx.batch_size, ctx.device
        reals = to_float(ctx.data[ctx.indices(len(ctx.data))])  # (B, 3, R, R) in [-1, 1]

        # --- D: softplus(D(fake)) + softplus(-D(real)) + gamma/2 ||grad D(real)||^2
        z = ctx.raw["G"].sample_z(n, device=dev)
        with torch.no_grad(), ctx.autocast():
            fakes = G(z)  # training mode: style mixing (p 0.9), w_avg updated
        with ctx.autocast():
            fake_scores = D(fakes.float()).float()  # (B,)
        # R1 takes a gradient of a gradient: the plain D (a compiled one has no double
        # backward), float32, autocast off; its forward gives the real scores too.
        r1, real_scores = ctx.penalty(
            r1_penalty, ctx.raw["D"], reals, self.r1_gamma, return_scores=True
        )
        loss_d = M.discriminator_loss(real_scores, fake_scores) + r1
        ctx.update("D", loss_d)

        # --- G: softplus(-D(G(z)))
        z = ctx.raw["G"].sample_z(n, device=dev)
        with ctx.autocast():
            loss_g = M.generator_loss(D(G(z)).float())
        ctx.update("G", loss_g)
        return {
            "loss_D": loss_d.detach(),
            "loss_G": loss_g.detach(),
            "R1": r1.detach(),
            "D_real": real_scores.detach().mean(),
            "D_fake": fake_scores.detach().mean(),
        }


def recipe_and_config(profile: str, **overrides) -> tuple[StyleGANRecipe, TrainConfig]:
    """The recipe and loop config of a profile, with overrides of any setting
    (``resolution``, ``r1_gamma``...), loop or run field (``steps``, ``out``...). G's EMA
    decay defaults to the official half-life of 10k images at the run's batch size."""
    model, loop, rest = split_overrides(PROFILES[profile], overrides)
    batch = loop.get("batch_size", PROFILES[profile].loop.batch_size)
    if "ema_decay" not in loop and "ema_decay" not in overrides:
        loop["ema_decay"] = M.g_ema_decay(batch)
    cfg = PROFILES[profile].loop.config(profile, **loop)
    recipe = StyleGANRecipe(
        resolution=model.resolution,
        fmap_base=model.fmap_base,
        fmap_max=model.fmap_max,
        z_dim=model.z_dim,
        mapping_layers=model.mapping_layers,
        mapping_lr_mul=model.mapping_lr_mul,
        style_mixing_prob=model.style_mixing_prob,
        r1_gamma=model.r1_gamma,
        mbstd_group_size=model.mbstd_group_size,
        n_faces=model.n_faces,
        **rest,
    )
    return recipe, cfg


# ------------------------------------------------------------------ generation
def load_generator(path=None, device="cpu") -> tuple[torch.nn.Module, dict]:
    """A generator from exported weights or a checkpoint (its EMA copy); None: shipped."""
    return CHAPTER.load(path, device)


def latents(G, n: int, seed: int) -> torch.Tensor:
    """n latents z (n, z_dim) from ``seed``, on G's device: the same seed, the same faces."""
    gen = torch.Generator().manual_seed(seed)
    return G.sample_z(n, generator=gen).to(next(G.parameters()).device)


@torch.no_grad()
def generate(
    G, n: int, seed: int = 0, psi: float = 1.0, noise_mode: str = "random"
) -> torch.Tensor:
    """n samples (n, 3, R, R) from ``seed`` (the latents and the random noise alike), with
    truncation ``psi`` in W (1: none)."""
    z = latents(G, n, seed)
    gen = torch.Generator(z.device).manual_seed(seed + 1)
    return G.eval()(z, psi=psi, noise_mode=noise_mode, generator=gen).float().cpu()


def band_mix(ws_a: torch.Tensor, ws_b: torch.Tensor, layers: range) -> torch.Tensor:
    """A's styles with the layers ``layers`` taken from B: (B, L, w_dim) x 2 -> (B, L, w_dim).

    The coarse band (a prefix) is ``mix_styles(ws_b, ws_a, k)``, the fine band (a suffix)
    ``mix_styles(ws_a, ws_b, k)``; a middle band needs both crossovers."""
    if ws_a.shape != ws_b.shape:
        raise ValueError(f"ws_a and ws_b differ in shape: {tuple(ws_a.shape)}, {ws_b.shape}")
    take_b = torch.zeros(ws_a.shape[1], dtype=torch.bool, device=ws_a.device)
    take_b[list(layers)] = True
    return torch.where(take_b[None, :, None], ws_b, ws_a)


@torch.no_grad()
def mixing_images(
    G, z_a: torch.Tensor, z_b: torch.Tensor, psi: float = 1.0, bands: dict | None = None
) -> dict[str, torch.Tensor]:
    """The paper's Fig. 3 for sources z_a, z_b (n, z_dim): images of A, of B, and of A with
    each band's styles from B, with the stored (fixed) noise: {"A", "B", "coarse", "middle",
    "fine"} -> (n, 3, R, R) on the CPU. ``bands``: name -> layers (default
    :func:`ganlab.models.stylegan.style_groups`), e.g. one layer at a time."""
    G = G.eval()
    ws_a, ws_b = G.styles(z_a, psi), G.styles(z_b, psi)
    out = {"A": ws_a, "B": ws_b}
    for band, layers in (bands or M.style_groups(G.resolution)).items():
        out[band] = band_mix(ws_a, ws_b, layers)
    return {k: G.synthesis(ws, noise_mode="const").float().cpu() for k, ws in out.items()}


def follows_b(read_a: list[dict], read_b: list[dict], read_mix: list[dict], factor: str):
    """(fraction of mixes that follow B in ``factor``, pairs counted).

    A number (an angle): the mix reads closer to B than to A (pairs whose sources read less
    than :data:`MIN_ANGLE_GAP` apart are skipped: the judge cannot tell them apart). A
    name: among the pairs where A and B read differently, the mix reads B's value."""
    hits = count = 0
    for a, b, m in zip(read_a, read_b, read_mix, strict=True):
        numeric = not isinstance(a[factor], str)
        if a[factor] == b[factor] or (numeric and abs(a[factor] - b[factor]) < MIN_ANGLE_GAP):
            continue
        count += 1
        if numeric:
            hits += abs(m[factor] - b[factor]) < abs(m[factor] - a[factor])
        else:
            hits += m[factor] == b[factor]
    return (hits / count if count else float("nan")), count


def pose_transfer(read_a: list[dict], read_b: list[dict], read_mix: list[dict], angle: str):
    """How far the mix moves from A toward B in ``angle``: the median over the pairs of
    (mix - A) / (B - A) (0: A's angle kept, 1: B's taken), pairs whose sources read at least
    :data:`MIN_ANGLE_GAP` apart."""
    ratios = [
        (m[angle] - a[angle]) / (b[angle] - a[angle])
        for a, b, m in zip(read_a, read_b, read_mix, strict=True)
        if abs(b[angle] - a[angle]) >= MIN_ANGLE_GAP
    ]
    return float(statistics.median(ratios)) if ratios else float("nan")


@torch.no_grad()
def mixing_table(
    G, n: int = MIXING_N, seed: int = 0, psi: float = 1.0, bands: dict | None = None
) -> dict:
    """Which factors follow source B when each band's styles come from B, as the face judge
    reads them: ``{"n", "layers": {band: [l...]}, "table": {band: {group: fraction}},
    "factors": {band: {factor: fraction}}, "pairs": {factor: counted}, "pose_transfer":
    {band: {angle: median (mix - A) / (B - A)}}}``.

    Sources: A from ``seed``, B from ``seed + 1`` (n each), fixed noise. A group's fraction is
    the mean of its factors'. ``bands``: as :func:`mixing_images` (default: coarse, middle,
    fine)."""
    from ganlab.evaluation.faces import face_judge

    z_a, z_b = latents(G, n, seed), latents(G, n, seed + 1)
    bands = bands or M.style_groups(G.resolution)
    images = mixing_images(G, z_a, z_b, psi, bands)
    judge = face_judge()
    reads = {k: judge.read(v.clamp(-1, 1)) for k, v in images.items()}
    factors = sorted({f for group in FACTOR_GROUPS.values() for f in group})
    per_factor, pairs = {}, {}
    for band in bands:
        per_factor[band] = {}
        for f in factors:
            frac, count = follows_b(reads["A"], reads["B"], reads[band], f)
            per_factor[band][f], pairs[f] = frac, count
    table = {
        band: {g: sum(row[f] for f in fs) / len(fs) for g, fs in FACTOR_GROUPS.items()}
        for band, row in per_factor.items()
    }
    transfer = {
        band: {f: pose_transfer(reads["A"], reads["B"], reads[band], f) for f in POSE}
        for band in per_factor
    }
    return {
        "n": n,
        "psi": psi,
        "layers": {band: list(bands[band]) for band in per_factor},
        "table": table,
        "factors": per_factor,
        "pairs": pairs,
        "pose_transfer": transfer,
    }


# ------------------------------------------------------------------ the paper's demos
def band_gap(table: dict, group: str, high: str, low: str) -> dict:
    """How much more often B's ``high`` band brings B's ``group`` than B's ``low`` band does,
    in a :func:`mixing_table`: -> {"gap", "se", "clear"}. ``se`` treats each reading of the
    group's factors as a coin flip, se = sqrt((p (1 - p) + q (1 - q)) / n) over the n readings
    (the table's ``pairs`` summed over the group); ``clear`` is gap > 2 se."""
    if group not in FACTOR_GROUPS:
        raise ValueError(f"group must be one of {list(FACTOR_GROUPS)}, got {group!r}")
    for band in (high, low):
        if band not in table["table"]:
            raise ValueError(f"band {band!r} is not in the table: {list(table['table'])}")
    p, q = table["table"][high][group], table["table"][low][group]
    n = sum(table["pairs"][f] for f in FACTOR_GROUPS[group])
    se = ((p * (1 - p) + q * (1 - q)) / max(n, 1)) ** 0.5
    return {"gap": p - q, "se": se, "clear": p - q > 2 * se}


@torch.no_grad()
def noise_std(G, z: torch.Tensor, draws: int = 16, seed: int = 0) -> torch.Tensor:
    """The paper's Fig. 4 (right): per-pixel standard deviation over ``draws`` noise draws
    with the styles fixed, averaged over RGB: (n, R, R). Large where noise decides (hair,
    fur strokes), near 0 where the styles alone decide."""
    G = G.eval()
    ws = G.styles(z)
    gen = torch.Generator(z.device).manual_seed(seed)
    images = torch.stack([G.synthesis(ws, generator=gen).float() for _ in range(draws)])
    return images.std(dim=0).mean(dim=1).cpu()  # (draws, n, 3, R, R) -> (n, R, R)


@torch.no_grad()
def noise_variants(G, z: torch.Tensor, seed: int = 0) -> dict[str, torch.Tensor]:
    """The paper's Fig. 5: the same styles with noise in every layer, in none, in the coarse
    layers only and in the fine layers only (:func:`ganlab.models.stylegan.noise_groups`);
    one noise draw (from ``seed``) shared by the four. name -> (n, 3, R, R) on the CPU."""
    G = G.eval()
    ws = G.styles(z)
    gen = torch.Generator(z.device).manual_seed(seed)
    noise = [
        torch.randn(len(z), 1, r, r, generator=gen, device=z.device)
        for r in (M.layer_resolution(i) for i in range(G.num_layers))
    ]
    groups = M.noise_groups(G.resolution)
    layers = {"all": range(G.num_layers), "none": range(0), **groups}
    out = {}
    for name, keep in layers.items():
        chosen = [n if i in keep else None for i, n in enumerate(noise)]
        out[name] = G.synthesis(ws, noise_mode="none", noise=chosen).float().cpu()
    return out


@torch.no_grad()
def diversity(images: torch.Tensor) -> float:
    """Mean perceptual distance (the course's LPIPS stand-in) between images 0-1, 2-3, ...:
    n / 2 disjoint pairs of independent samples."""
    from ganlab.evaluation.faces import perceptual_distance

    d = perceptual_distance()
    x = images.float().clamp(-1, 1)
    return float(torch.cat([d(x[s : s + 2 * 125 : 2], x[s + 1 : s + 2 * 125 : 2])
                            for s in range(0, len(x) - 1, 250)]).mean())  # fmt: skip


@torch.no_grad()
def truncation_sweep(G, psis=(0.0, 0.25, 0.5, 0.7, 0.85, 1.0), n: int = 1000, seed: int = 0):
    """Frechet distance (face judge, with its real-vs-real floor) and diversity over psi: the
    paper's quality / variation trade-off. -> [{"psi", "frechet_distance", "rung",
    "real_vs_real", "diversity"}], n samples per psi, the same latents for every psi."""
    from ganlab.evaluation.faces import evaluate_faces

    rows = []
    size = max(G.resolution, 16)
    for psi in psis:
        images = torch.cat([generate(G, min(250, n - s), seed + s, psi) for s in range(0, n, 250)])
        fd = evaluate_faces(None, size=size, images=images)["frechet_distance"]
        rows.append({
            "psi": psi,
            "frechet_distance": fd["value"],
            "rung": fd["rung"],
            "real_vs_real": fd["real_vs_real"],
            "diversity": diversity(images),
        })  # fmt: skip
    return rows


def path_lengths(G, n: int = 2000, seed: int = 0, epsilon: float = 1e-4, crop=None) -> dict:
    """Perceptual path length (Sec. 4.1) in Z (slerp) and W (lerp), full and end sampling,
    with the course's perceptual distance, on n pairs each, the noise fixed (the stored
    draw). ``crop=None``: the whole image (the faces world has no hair or clutter around
    the face; the paper crops FFHQ to the face). -> {"z_full", "z_end", "w_full", "w_end"}."""
    from ganlab.evaluation.faces import perceptual_distance
    from ganlab.metrics.ppl import perceptual_path_length

    G = G.eval()
    device = next(G.parameters()).device
    out = {}
    for space in ("z", "w"):
        for sampling in ("full", "end"):
            out[f"{space}_{sampling}"] = perceptual_path_length(
                lambda x, y: perceptual_distance()(x.float().cpu(), y.float().cpu()),
                G.z_dim,
                mapping=G.mapping,
                synthesis=lambda w: G.synthesis(w, noise_mode="const"),
                space=space,
                sampling=sampling,
                num_samples=n,
                epsilon=epsilon,
                crop=crop,
                seed=seed,
                device=device,
            )
    return out


# ------------------------------------------------------------------ the contract
class StyleGAN(Chapter):
    """Chapter 6's contract: faces world, unconditional; ``sample --psi`` / ``--mix SEED``."""

    name = NAME
    world = "faces"
    profiles = PROFILES
    shipped = SHIPPED
    sample_out = "stylegan_samples.png"
    bench_steps = (10, 3)
    bench_steps_smoke = (3, 2)
    eval_limit = 5000
    sample_rows = 4

    def recipe(self, profile, **overrides):
        return recipe_and_config(profile, **overrides)

    def add_options(self, command, parser) -> None:
        if command == "train":
            parser.add_argument(
                "--r1-gamma",
                type=float,
                help="R1's weight gamma (default: the profile's; the paper's 10 is for 1024 px)",
            )
            parser.add_argument(
                "--mapping-layers",
                type=int,
                help="depth of the mapping network (default: the profile's; the paper's 8)",
            )
            parser.add_argument(
                "--mapping-lr-mul",
                type=float,
                help="the mapping network's learning-rate multiplier (default: the profile's; "
                "the paper's 0.01)",
            )
        if command == "sample":
            parser.add_argument(
                "--psi",
                type=float,
                default=1.0,
                help="truncation in W on the first 8 layers, in [-1, 1] (default 1: none; "
                "the paper's figures use 0.7)",
            )
            parser.add_argument(
                "--mix",
                type=int,
                metavar="SEED",
                help="the style-mixing figure: rows A (--seed), B (SEED), then A with B's "
                "coarse, middle and fine styles",
            )

    def train_options(self, args) -> dict:
        names = ("r1_gamma", "mapping_layers", "mapping_lr_mul")
        return {k: getattr(args, k) for k in names if getattr(args, k) is not None}

    def generator(self, G, meta, for_evaluation=False):
        return lambda n, seed: generate(G, n, seed)

    def sample_count(self, args) -> int:
        return args.n * (self.sample_rows if args.mix is None else 2 + len(BANDS))

    def sample_images(self, G, meta, args):
        from ganlab.chapters.commands import check_seed

        M.check_psi(args.psi)
        if args.mix is None:
            images = generate(G, args.n * self.sample_rows, args.seed, args.psi)
            return images, args.n, f"psi {args.psi:g}"
        check_seed(args.mix, "--mix")
        rows = mixing_images(
            G, latents(G, args.n, args.seed), latents(G, args.n, args.mix), args.psi
        )
        what = "rows: A, B, then A with B's " + ", ".join(b for b in BANDS if b in rows)
        return torch.cat([rows[k] for k in ("A", "B", *BANDS) if k in rows]), args.n, what

    def evaluate_generator(self, G, meta, n=1000, seed=0) -> dict:
        """The faces protocol at the generator's resolution (psi 1, random noise): FD / KID
        in face-judge features with the ladder."""
        from ganlab.evaluation.faces import evaluate_faces

        size = max(G.resolution, 16)
        return evaluate_faces(self.generator(G, meta), n=n, size=size, seed=seed)

    def evaluate(self, G, meta, n, seed) -> dict:
        return {
            "seed": seed,
            "resolution": G.resolution,
            "metrics": self.evaluate_generator(G, meta, n, seed),
            "mixing": mixing_table(G, min(n, MIXING_N), seed),
        }

    def ship_measure(self, G, meta, n):
        """The protocol at ``n`` samples and again at ``RECHECK_N`` (seed 0), the size the
        shipped-weights test re-measures, and the mixing table on ``MIXING_N`` pairs."""
        from ganlab.evaluation.faces import summary_metrics

        metrics = summary_metrics(self.evaluate_generator(G, meta, n))
        metrics["recheck"] = summary_metrics(self.evaluate_generator(G, meta, min(n, RECHECK_N)))
        return metrics, {"mixing": mixing_table(G, MIXING_N, 0)}


CHAPTER = StyleGAN()


__all__ = [
    "BANDS",
    "CHAPTER",
    "FACTOR_GROUPS",
    "PROFILES",
    "StyleGANRecipe",
    "StyleGANSettings",
    "band_mix",
    "diversity",
    "follows_b",
    "generate",
    "latents",
    "load_generator",
    "mixing_images",
    "mixing_table",
    "pose_transfer",
    "noise_std",
    "noise_variants",
    "path_lengths",
    "recipe_and_config",
    "truncation_sweep",
]
