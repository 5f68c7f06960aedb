r"""Chapter 8, StarGAN v2 on the faces world: profiles, recipe, translation, evaluation.

The commands (``ganlab train/sample/evaluate/bench/ship stargan-v2``) are the course's generic
ones (:mod:`ganlab.chapters.commands`); this module declares what they need: ``CHAPTER``.
``train`` also takes ``--lambda-ds``, ``--lambda-sty`` and ``--lambda-cyc`` (0 takes a loss
out: the ablation's runs, like the paper's Table 1), ``--repeat-num`` (G's down/up blocks) and
``--f-lr`` (the mapping network's learning rate).

**One iteration** is the official ``Solver.train`` (:mod:`ganlab.models.stargan_v2` has every
formula): D is updated twice, with latent-guided fakes G(x, F_y~(z)) and reference-guided ones
G(x, E_y~(x_ref)) (non-saturating loss + R1 on the reals, in float32 outside autocast); then
G, F and E on the latent-guided objective (adversarial + style reconstruction - lambda_ds
diversity + cycle), then G alone on the reference-guided one. lambda_ds decays linearly from
2 (the AFHQ command) to 0 over the run (the official ``ds_iter`` = ``total_iters``).

In the course's loop the "generator" is :class:`~ganlab.models.stargan_v2.Translator`
(G, F and E in one module): one Adam with three parameter groups (lr 1e-4, 1e-6 for F,
1e-4; betas (0, 0.99); weight decay 1e-4) is the official three Adams (the moments are per
parameter; a net frozen for a step has no gradient, so Adam skips it, exactly as the official
solver, which does not step it), and the loop's EMA (0.999) of that module is the official
EMA of G, F and E. Host syncs: none in a step (labels are checked on the CPU only).

**Data.** Each domain's training faces come from that domain's own stream of the world (the
official ``ImageFolder`` per domain with the balanced sampler): a source is a random domain,
then a random face of it; the two references of a row share a random target domain y~ (it
may equal the source's, as officially). Random horizontal flips (official); the official
random-resized crop (p 0.5, scale 0.8-1) is left out: the world's faces are centred.

Scaled values (the model's deviations table has the rest):

=====================  ==================================  ====================================
what                   paper / official code               this chapter (cpu profile)
=====================  ==================================  ====================================
image size             256 px                              32 px (smoke 16, gpu 64)
widths                 ``dim_in`` 2**14 / S, cap 512       dim_in 16, cap 64 (G 16-32)
G's down/up blocks     log2(S) - 4 (bottleneck at S/16)    the official: 1 at 32 px (16 px).
                                                           Measured, 1,000 iterations: with 2
                                                           blocks (8 px, this profile until
                                                           2026-12-05) G stops reading its
                                                           source (:func:`source_dependence`
                                                           0.045; clovaai's own code at that
                                                           config 0.027): one template per
                                                           style; with 1 block 0.73
F's hidden width       512                                 256
iterations, ds_iter    100k, 100k                          20,000, 20,000 (~0.3 s each on one
                                                           CPU thread, ~1.6 h); measured
                                                           (n = 3,000 outputs per mode)
                                                           against 6,000: latent / reference
                                                           mean FD 125.1 / 91.3 -> 102.6 /
                                                           43.5, domain accuracy 0.81 / 0.77
                                                           -> 0.92 / 0.88, yaw r 0.64 / 0.66
                                                           -> 0.85 / 0.87; gpu profile 10k
                                                           (~34 min on an H200 at the 39
                                                           images/s measured eager)
batch                  8                                   8 (the trap: 4 trains badly)
lambda_ds              2 (AFHQ), 1 (CelebA-HQ)             2 (the faces world is AFHQ's analogue)
training images        AFHQ ~5,000 per domain              3,000 faces per domain
FD's real images       per task (src2trg): all the         per target domain, both sources
                       target's training images; then      pooled: as many held-out test
                       the mean over tasks                 faces of the target (1,000 at
                       (``calculate_fid_for_all_tasks``)   cpu); the mean over targets
=====================  ==================================  ====================================

Known shortfall: latent-guided outputs into ``wild`` are nearly all lions (the face judge reads
190 of 200 of the shipped model's as lion: 40 held-out cats and dogs x 5 z; its references are
fox / tiger / lion / wolf). Diagnosed in lecture 8 (section 10): every style F_wild(z) lies
nearest the lions' centroid of E_wild's styles of real wild faces grouped by true kind. With
the official F rate (1e-6) F barely trains in 20,000 iterations (its weights moved 5.7 % of
their initial norm, G's 49 %). Two faster rates were tried (``--f-lr``; kinds of the same 200
outputs, EMA nets): 1e-4 for 6,000 iterations: cat 140, tiger 51, dog 9, no lion; 5e-6 (the
official step budget, 100k x 1e-6, over 20,000 iterations), stopped at 10,571: lion 125, cat
63, tiger 11, dog 1 (at 4,481: lion 153, cat 39; at 7,656: lion 135, cat 53), the judge reading
0.78 of them as wild (shipped 0.985). F's styles then spread over E's kinds (nearest centroid
of 2,000: lion 1,276, wolf 304, tiger 258, fox 162) but G draws many of them as cats: not a fix
at these lengths, so the profile keeps the official rate.

G, not only F, favours lions. Reference-guided into ``wild`` (200 references of the reference
split, each with one of the 40 held-out cats and dogs as source; the judge reads the
references' own kind right 198 times of 200), the output's kind by the reference's true kind:
lion references give lions 56 of 56; tiger references tiger 32 of 51 (cat 11, fox 7); fox
references tiger 21, cat 15, fox only 6 of 44; wolf references dog 21, cat 20, wolf only 5
of 49. So the other wild kinds' styles reach G, but G draws them as its lion-, tiger- or
cat-like faces: within the wild domain, G has learnt lions best.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ganlab.chapters.contract import Chapter, Profile, split_overrides
from ganlab.data.faces import DOMAINS
from ganlab.models import stargan_v2 as M
from ganlab.train.export import ModelSpec
from ganlab.train.loop import LoopSettings, Recipe, StepContext, TrainConfig, adam

NAME = "stargan-v2"
SHIPPED = "stargan_v2"  # ganlab/weights/stargan_v2.safetensors
NUM_DOMAINS = len(DOMAINS)  # cat, dog, wild
RECHECK_N = 5  # sources per domain the shipped-weights test re-measures (CI time)
EVAL_OUTS = M.NUM_OUTS_PER_DOMAIN  # 10 outputs per (source, target), as the paper


@dataclass(frozen=True)
class StarGANSettings:
    """The model side of a profile: image size, widths (``dim_in`` None = the official
    2**14 / S), G's number of down/up blocks (None = the official log2(S) - 4), F's hidden
    width, z and s sizes, the initial diversity weight, flips, and ``n_faces`` training faces
    PER DOMAIN."""

    img_size: int = 32
    dim_in: int | None = 16
    max_conv_dim: int = 64
    repeat_num: int | None = None
    hidden_dim: int = 256
    latent_dim: int = M.LATENT_DIM
    style_dim: int = M.STYLE_DIM
    lambda_ds: float = M.LAMBDA_DS["afhq"]
    flip: bool = True
    n_faces: int = 3000


# smoke: seconds on 2 cores; cpu: 20,000 iterations at 32 px, ~0.3-0.5 s each on one CPU
# thread of the course machine (0.29 s beside another training): 1.6-2.8 CPU-hours;
# gpu: 64 px, the official cap (512) and F, the first width 64 as at 256 px (the official
# formula would give 256 at 64 px).
PROFILES = {
    "smoke": Profile(StarGANSettings(16, 8, 16, 1, 32, 8, 16, n_faces=64), LoopSettings(4, 8, 2)),
    "cpu": Profile(StarGANSettings(), LoopSettings(20_000, 8, 50)),
    "gpu": Profile(
        StarGANSettings(64, 64, M.MAX_CONV_DIM, None, M.HIDDEN_DIM, n_faces=5000),
        LoopSettings(10_000, 8, 200),  # 10k x 8 / 39 img/s (H200): ~34 min
    ),
}


@dataclass
class StarGANRecipe(Recipe):
    """StarGAN v2 (Choi et al. 2020) on the faces world; see the module docstring."""

    img_size: int = 32
    dim_in: int | None = 16
    max_conv_dim: int = 64
    repeat_num: int | None = None
    hidden_dim: int = 256
    latent_dim: int = M.LATENT_DIM
    style_dim: int = M.STYLE_DIM
    lambda_ds: float = M.LAMBDA_DS["afhq"]
    flip: bool = True
    n_faces: int = 3000  # training faces PER DOMAIN
    lambda_sty: float = 1.0
    lambda_cyc: float = 1.0
    lambda_reg: float = 1.0
    f_lr: float = M.F_LR  # the mapping network's Adam rate (official 1e-6)
    data_root: str | None = None
    chapter: str = field(default=NAME, init=False)

    def __post_init__(self) -> None:
        for name in ("lambda_ds", "lambda_sty", "lambda_cyc", "lambda_reg"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if not (isinstance(self.f_lr, (int, float)) and math.isfinite(self.f_lr) and self.f_lr > 0):
            raise ValueError(f"f_lr must be a finite number > 0, got {self.f_lr!r}")
        if not (isinstance(self.n_faces, int) and self.n_faces >= 2):
            raise ValueError(f"n_faces must be an int >= 2, got {self.n_faces!r}")

    def config(self) -> dict:
        keys = ("img_size", "dim_in", "max_conv_dim", "repeat_num", "hidden_dim", "latent_dim",
                "style_dim", "lambda_ds", "lambda_sty", "lambda_cyc", "lambda_reg", "flip",
                "n_faces")  # fmt: skip
        own = {"f_lr": self.f_lr} if self.f_lr != M.F_LR else {}  # recorded when not official
        return {
            **{k: getattr(self, k) for k in keys},
            **own,
            "data": self.data_root or "faces world",
        }

    def generator_spec(self) -> ModelSpec:
        return ModelSpec.of(
            M.Translator,
            img_size=self.img_size,
            num_domains=NUM_DOMAINS,
            latent_dim=self.latent_dim,
            style_dim=self.style_dim,
            hidden_dim=self.hidden_dim,
            dim_in=self.dim_in,
            max_conv_dim=self.max_conv_dim,
            repeat_num=self.repeat_num,
        )

    def build(self):
        D = M.Discriminator(
            self.img_size, NUM_DOMAINS, dim_in=self.dim_in, max_conv_dim=self.max_conv_dim
        )
        return {"G": self.generator_spec().build(), "D": D}

    def optimizers(self, modules, device):
        T = modules["G"]
        groups = [  # the official three Adams as three groups of one (moments are per param)
            {"params": T.generator.parameters(), "lr": M.LR},
            {"params": T.mapping_network.parameters(), "lr": self.f_lr},
            {"params": T.style_encoder.parameters(), "lr": M.LR},
        ]
        kw = dict(weight_decay=M.WEIGHT_DECAY)
        return {
            "G": adam(groups, M.LR, M.BETAS, device, **kw),
            "D": adam(modules["D"].parameters(), M.LR, M.BETAS, device, **kw),
        }

    def data(self, device):
        """Faces per domain as uint8 (K, N, 3, S, S) on ``device`` (row k: domain k)."""
        if self.data_root:
            return _folder_faces(self.data_root, self.img_size, self.n_faces).to(device)
        from ganlab.data.faces import load_faces

        per_domain = [
            load_faces(self.n_faces, "train", size=self.img_size, domain=d).images for d in DOMAINS
        ]
        return torch.stack(per_domain).to(device)

    def batch(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """The official ``InputFetcher``: sources x_real of domains y_org, two references
        x_ref, x_ref2 of one target domain y_trg per row, two latents; all on the device."""
        from ganlab.data.faces import to_float

        data, b, dev = ctx.data, ctx.batch_size, ctx.device
        k, n = data.shape[:2]

        def draw(domains: torch.Tensor) -> torch.Tensor:
            x = to_float(data[domains, torch.randint(0, n, (b,), device=dev)])  # (B, 3, S, S)
            if self.flip:
                flip = torch.rand(b, device=dev) < 0.5
                x = torch.where(flip[:, None, None, None], x.flip(-1), x)
            return x

        y_org = torch.randint(0, k, (b,), device=dev)
        y_trg = torch.randint(0, k, (b,), device=dev)
        latent = ctx.raw["G"].latent_dim
        return dict(
            x_real=draw(y_org), y_org=y_org, x_ref=draw(y_trg), x_ref2=draw(y_trg), y_trg=y_trg,
            z_trg=torch.randn(b, latent, device=dev), z_trg2=torch.randn(b, latent, device=dev),
        )  # fmt: skip

    def weights_at(self, step: int, total: int) -> M.LossWeights:
        """The lambdas at ``step`` of ``total``: lambda_ds decays linearly to 0 over the run."""
        return M.LossWeights(
            lambda_reg=self.lambda_reg,
            lambda_sty=self.lambda_sty,
            lambda_ds=M.lambda_ds_at(step, self.lambda_ds, ds_iter=total),
            lambda_cyc=self.lambda_cyc,
        )

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        T, D = ctx.raw["G"], ctx.raw["D"]
        inp = self.batch(ctx)
        M.check_batch_size(ctx.batch_size)
        args = self.weights_at(ctx.step, ctx.total)
        nets = {"generator": T.generator, "mapping_network": T.mapping_network,
                "style_encoder": T.style_encoder, "discriminator": D}  # fmt: skip
        x_real, y_org, y_trg = inp["x_real"], inp["y_org"], inp["y_trg"]
        logs: dict[str, torch.Tensor] = {}

        # 1-2: D with latent-guided, then reference-guided fakes (made under no_grad)
        for mode, guide in (
            ("latent", dict(z_trg=inp["z_trg"])),
            ("ref", dict(x_ref=inp["x_ref"])),
        ):
            with ctx.autocast():
                d_loss, parts = M.compute_d_loss(nets, args, x_real, y_org, y_trg, **guide)
            ctx.update("D", d_loss)
            logs.update({f"D/{mode}_{k}": v for k, v in parts.items()})

        # 3: G, F and E on the latent-guided objective (D frozen: it gets no gradients)
        with M.frozen(D):
            with ctx.autocast():
                g_loss, parts = M.compute_g_loss(
                    nets, args, x_real, y_org, y_trg, z_trgs=(inp["z_trg"], inp["z_trg2"])
                )
            ctx.update("G", g_loss)
        logs.update({f"G/latent_{k}": v for k, v in parts.items()})

        # 4: G alone on the reference-guided objective (F and E frozen: Adam skips them)
        with M.frozen(D, T.mapping_network, T.style_encoder):
            with ctx.autocast():
                g_loss, parts = M.compute_g_loss(
                    nets, args, x_real, y_org, y_trg, x_refs=(inp["x_ref"], inp["x_ref2"])
                )
            ctx.update("G", g_loss)
        logs.update({f"G/ref_{k}": v for k, v in parts.items()})
        return logs  # the loop then updates the EMA of G, F and E (one module)


def _folder_faces(root: str, size: int, n_faces: int) -> torch.Tensor:
    """AFHQ's layout on disk (``ganlab.data.afhq.AFHQ``): the first ``n_faces`` faces
    of each domain as uint8 (K, N, 3, S, S); a domain with fewer faces is an error."""
    from ganlab.data.afhq import AFHQ

    data = AFHQ(root, split="train", size=size, domains=DOMAINS)
    by_domain: list[list[torch.Tensor]] = [[] for _ in DOMAINS]
    for i in range(len(data)):
        item = data[i]
        if len(by_domain[item["label"]]) < n_faces:
            by_domain[item["label"]].append(item["image"])
    short = {d: len(v) for d, v in zip(DOMAINS, by_domain) if len(v) < n_faces}
    if short:
        raise ValueError(f"{root}: fewer than n_faces={n_faces} faces in {short}")
    images = torch.stack([torch.stack(v) for v in by_domain])  # (K, N, 3, S, S) in [-1, 1]
    return images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def recipe_and_config(profile: str, **overrides) -> tuple[StarGANRecipe, TrainConfig]:
    """The recipe and loop config of a profile, with overrides (model settings, lambdas,
    loop and run fields: ``steps``, ``out``, ``resume``...). No ``torch.compile``: the steps
    freeze nets by ``requires_grad``, which would recompile every step."""
    model, loop, rest = split_overrides(PROFILES[profile], overrides)
    loop.setdefault("compile", False)
    recipe = StarGANRecipe(**dataclasses.asdict(model), **rest)
    return recipe, PROFILES[profile].loop.config(profile, **loop)


# ------------------------------------------------------------------ translation
def load_translator(path=None, device="cpu") -> tuple[M.Translator, dict]:
    """The (EMA) G, F, E from exported weights or a checkpoint; ``None``: the shipped ones."""
    return CHAPTER.load(path, device)


def domain_index(domain) -> int:
    """``"dog"`` or 1 -> 1 (an index into ``DOMAINS``), with a clear error."""
    if isinstance(domain, str):
        if domain not in DOMAINS:
            raise ValueError(f"unknown domain {domain!r}: expected one of {', '.join(DOMAINS)}")
        return DOMAINS.index(domain)
    if isinstance(domain, bool) or not isinstance(domain, int) or not 0 <= domain < NUM_DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS} or an index 0..{NUM_DOMAINS - 1}")
    return domain


def _device(T) -> torch.device:
    return next(T.parameters()).device


@torch.no_grad()
def translate(T, sources, domain, seed: int = 0, references=None) -> torch.Tensor:
    """Sources (N, 3, S, S) in [-1, 1] into ``domain`` (name or index): latent-guided with
    z from ``seed`` (one z per source), or reference-guided with ``references`` (N, 3, S, S)
    of that domain (row n takes the style of reference n). -> (N, 3, S, S) in [-1, 1]."""
    y = domain_index(domain)
    dev = _device(T)
    x = sources.float().to(dev)
    T.eval()
    if references is not None:
        out = T(x, y, x_ref=references.float().to(dev))
    else:
        gen = torch.Generator().manual_seed(seed)
        out = T(x, y, z=T.sample_z(len(x), generator=gen).to(dev))
    return out.float().clamp(-1, 1).cpu()


def held_out_sources(n: int, size: int, domain: str | None = None) -> torch.Tensor:
    """The first ``n`` held-out (test) faces, of one domain or all, as floats."""
    from ganlab.evaluation.faces import real_faces

    return real_faces(n, "test", size, domain)


def references(n: int, size: int, domain: str) -> torch.Tensor:
    """``n`` faces of ``domain``'s reference set (never trained on), as floats."""
    from ganlab.data.faces import load_faces

    return load_faces(n, "reference", size=size, domain=domain, progress=False).float_images()


def kind_references(n: int, size: int, kind: str = "fox") -> torch.Tensor:
    """``n`` faces of one kind (``fox``, ``wolf``, ``lion``...) from its domain's reference
    set, as floats (the world knows each face's kind)."""
    from ganlab.data.faces import KIND_DOMAIN, KINDS, load_faces

    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: expected one of {', '.join(KINDS)}")
    pool = load_faces(40 * n, "reference", size=size, domain=KIND_DOMAIN[kind], progress=False)
    idx = (pool.factor("kind") == KINDS.index(kind)).nonzero().flatten()[:n]
    if len(idx) < n:
        raise ValueError(f"only {len(idx)} {kind} faces among {len(pool)} references")
    return pool.float_images(idx)


@torch.no_grad()
def payoff_figure(T, n: int = 6, seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """The chapter's payoff: ``n`` held-out cats, then the same cats as dogs, latent-guided
    (``seed``) and reference-guided (each in the style of a dog from the dog reference set,
    shown below them), then as foxes (reference-guided by foxes of the wild reference set,
    in the last row). -> (images (6 n, 3, S, S), row labels)."""
    cats = held_out_sources(n, T.img_size, "cat")
    dogs = references(n, T.img_size, "dog")
    foxes = kind_references(n, T.img_size, "fox")
    rows = [
        cats,
        translate(T, cats, "dog", seed=seed),
        translate(T, cats, "dog", references=dogs),
        dogs,
        translate(T, cats, "wild", references=foxes),
        foxes,
    ]
    labels = ["cats", "-> dog (z)", "-> dog (ref.)", "dog refs", "-> fox (ref.)", "fox refs"]
    return torch.cat(rows), labels


@torch.no_grad()
def latent_grid(T, sources, seeds=(0, 1, 2)) -> tuple[torch.Tensor, int]:
    """Each source into each domain with several z: rows = the sources, then for every
    domain one row per seed. -> (images, per_row)."""
    rows = [sources.float()]
    for d in DOMAINS:
        rows += [translate(T, sources, d, seed=s) for s in seeds]
    return torch.cat(rows), len(sources)


@torch.no_grad()
def reference_grid(T, sources, refs, ref_domains) -> torch.Tensor:
    """The paper's reference-guided grid: a blank corner and the sources along the top row;
    each next row starts with a reference, then every source in its style (and domain).
    -> ((len(refs) + 1) * (len(sources) + 1), 3, S, S)."""
    blank = torch.ones_like(sources[:1])
    rows = [torch.cat([blank, sources.float()])]
    for ref, d in zip(refs, ref_domains):
        out = translate(T, sources, d, references=ref[None].expand(len(sources), -1, -1, -1))
        rows.append(torch.cat([ref[None].float(), out]))
    return torch.cat(rows)


def explorer(T, n_sources: int = 12, n_refs: int = 8):
    """The lecture's explorer: pick a source (held-out face), a target domain, and a seed
    (latent-guided) or a reference of that domain (reference-guided); shows source, output
    and, for a reference, the reference. Needs ipywidgets."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from ganlab.viz.grids import show_grid

    size = T.img_size
    sources = held_out_sources(n_sources, size)
    refs = {d: references(n_refs, size, d) for d in DOMAINS}
    source = widgets.IntSlider(0, 0, n_sources - 1, description="source")
    domain = widgets.Dropdown(options=list(DOMAINS), value="dog", description="into")
    mode = widgets.ToggleButtons(options=["seed", "reference"], description="style from")
    pick = widgets.IntSlider(0, 0, 99, description="seed / ref")
    out = widgets.Output()

    def draw(*_):
        out.clear_output(wait=True)
        x = sources[source.value : source.value + 1]
        if mode.value == "seed":
            images = torch.cat([x, translate(T, x, domain.value, seed=pick.value)])
            title = f"source -> {domain.value}, seed {pick.value}"
        else:
            ref = refs[domain.value][pick.value % n_refs][None]
            images = torch.cat([x, translate(T, x, domain.value, references=ref), ref])
            title = f"source -> {domain.value} in the style of reference {pick.value % n_refs}"
        with out:
            fig, ax = plt.subplots(figsize=(1.6 * len(images), 2))
            show_grid(images, nrow=len(images), ax=ax, title=title)
            display(fig)
            plt.close(fig)

    for w in (source, domain, mode, pick):
        w.observe(draw, names="value")
    draw()
    return widgets.VBox([widgets.HBox([source, domain]), widgets.HBox([mode, pick]), out])


# ------------------------------------------------------------------ evaluation
@torch.no_grad()
def translate_pairs(T, n: int, mode: str = "latent", outs: int = EVAL_OUTS, seed: int = 0):
    """The paper's protocol's outputs: every source domain != target, ``n`` test sources
    each, ``outs`` outputs per source (``outs`` latents, or ``outs`` references of the
    target's reference set). -> dict of ``outputs`` (P, n, outs, 3, S, S), ``sources``
    (P, n, 3, S, S), ``pairs`` [(source, target)] (P = K (K - 1))."""
    if mode not in ("latent", "reference"):
        raise ValueError(f"mode must be 'latent' or 'reference', got {mode!r}")
    size = T.img_size
    gen = torch.Generator().manual_seed(seed)
    pairs = M.evaluation_pairs(NUM_DOMAINS)
    srcs = {d: held_out_sources(n, size, DOMAINS[d]) for d in range(NUM_DOMAINS)}
    refs = {d: references(n * outs, size, DOMAINS[d]) for d in range(NUM_DOMAINS)}
    outputs, sources = [], []
    for s, t in pairs:
        x, per = srcs[s], []
        for j in range(outs):
            if mode == "latent":
                z = T.sample_z(n, generator=gen)
                per.append(T(x.to(_device(T)), t, z=z.to(_device(T))).float().cpu())
            else:
                ref = refs[t][j * n : (j + 1) * n]  # a different reference per output
                per.append(translate(T, x, t, references=ref))
        outputs.append(torch.stack(per, 1).clamp(-1, 1))  # (n, outs, 3, S, S)
        sources.append(x)
    return {"outputs": torch.stack(outputs), "sources": torch.stack(sources), "pairs": pairs}


@torch.no_grad()
def source_dependence(T, n: int = 32, domain: str = "dog", seed: int = 0) -> float:
    """How much G's output depends on its source: ``n`` held-out cats translated with ONE
    style s = F_domain(z); the per-pixel variance of the outputs across the sources over the
    sources' own variance. About 1: the outputs vary as much as the sources; 0: one template
    whatever the source (G has stopped reading its input)."""
    x = held_out_sources(n, T.img_size, "cat").to(_device(T))
    gen = torch.Generator().manual_seed(seed)
    z = T.sample_z(1, generator=gen).to(x.device)  # (1, latent_dim): one style for every source
    s = T.mapping_network(z, torch.full((1,), domain_index(domain), device=x.device))
    out = T.eval().generator(x, s.expand(n, -1)).float()  # (n, 3, S, S)
    return (out.var(0).mean() / x.var(0).mean()).item()


@torch.no_grad()
def diversity(outputs: torch.Tensor) -> float:
    """The paper's LPIPS diversity with the course's perceptual distance: the mean distance
    over all pairs among each input's outputs (N, outs, 3, S, S), averaged over the inputs."""
    from ganlab.evaluation.faces import perceptual_distance

    dist = perceptual_distance()
    n, outs = outputs.shape[:2]
    feats = [dist.normalized_features(o) for o in outputs.unbind(1)]  # per output slot
    total = [
        dist.from_features(feats[i], feats[j]) for i in range(outs) for j in range(i + 1, outs)
    ]
    return float(torch.stack(total).mean())


def evaluate_translation(T, n: int = 50, seed: int = 0, modes=("latent", "reference")) -> dict:
    """The paper's protocol on the faces world, per mode (latent / reference): for every
    target domain the Frechet distance (face-judge features) of its outputs against as many
    real test faces of that domain, with real vs real beside it; diversity (mean pairwise
    perceptual distance among the 10 outputs of an input); and, beyond the paper, the
    judge's domain accuracy of the outputs (chance 1/3) and the source pose they keep.
    ``n`` sources per domain: each mode makes K (K - 1) n 10 outputs."""
    from ganlab.evaluation.faces import domain_report, face_judge, real_reference
    from ganlab.metrics.frechet import frechet_distance

    result: dict = {"n_sources_per_domain": n, "outs": EVAL_OUTS, "size": T.img_size}
    for mode in modes:
        run = translate_pairs(T, n, mode, seed=seed)
        out, pairs = run["outputs"], run["pairs"]
        fd = {}
        for t in range(NUM_DOMAINS):
            imgs = torch.cat([out[p].flatten(0, 1) for p, (_, tt) in enumerate(pairs) if tt == t])
            ref = real_reference(len(imgs), T.img_size, DOMAINS[t])
            fd[DOMAINS[t]] = {
                "value": frechet_distance(face_judge().embed_images(imgs), ref["features"]),
                "real_vs_real": ref["ladder"]["real_vs_real"],
                "n": len(imgs),
            }
        flat = out.flatten(0, 2)  # (P n outs, 3, S, S)
        targets = torch.tensor([t for _, t in pairs]).repeat_interleave(n * EVAL_OUTS)
        sources = run["sources"][:, :, None].expand(-1, -1, EVAL_OUTS, -1, -1, -1).flatten(0, 2)
        report = domain_report(flat, targets, sources)
        result[mode] = {
            "frechet_distance": fd,
            "mean_fd": sum(v["value"] for v in fd.values()) / NUM_DOMAINS,
            "diversity": diversity(out.flatten(0, 1)),
            "domain_accuracy": report["domain_accuracy"],
            "chance": report["chance"],
            "confusion": report["confusion"],
            "pose_preservation": report["pose_preservation"],
            "n_outputs": len(flat),
        }
    return result


def summary_metrics(result: dict) -> dict:
    """The headline numbers of :func:`evaluate_translation` (what a manifest keeps)."""
    out = {"n_sources_per_domain": result["n_sources_per_domain"]}
    for mode in ("latent", "reference"):
        if mode not in result:
            continue
        r = result[mode]
        pose = r["pose_preservation"]
        out[mode] = {
            "mean_fd": r["mean_fd"],
            "fd": {d: v["value"] for d, v in r["frechet_distance"].items()},
            "real_vs_real": {d: v["real_vs_real"] for d, v in r["frechet_distance"].items()},
            "diversity": r["diversity"],
            "domain_accuracy": r["domain_accuracy"],
            "chance": r["chance"],
            "yaw_correlation": pose["yaw"]["correlation"],
            "yaw_retained": pose["yaw"]["retained"],
            "n_outputs": r["n_outputs"],
        }
    return out


def read_image(path, size: int) -> torch.Tensor:
    """An image file as (3, size, size) in [-1, 1] (centre-cropped square, Lanczos)."""
    from ganlab.data.ffhq import load_square_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--reference {str(path)!r}: no such file")
    try:
        return load_square_image(path, size)
    except Exception as e:  # PIL raises several kinds for a file that is not an image
        raise ValueError(f"--reference {str(path)!r} is not a readable image: {e}") from e


def judged_domain(images: torch.Tensor) -> list[int]:
    """The face judge's domain of each image (N, 3, S, S)."""
    from ganlab.evaluation.faces import face_judge

    return face_judge().domain_probs(images.float()).argmax(1).tolist()


# ------------------------------------------------------------------ the contract
class StarGANv2Chapter(Chapter):
    """Chapter 8's contract: faces world, translation into domains (``--domain``,
    ``--reference IMAGE``)."""

    name = NAME
    world = "faces"
    profiles = PROFILES
    shipped = SHIPPED
    sample_out = "stargan_v2_samples.png"
    bench_steps = (10, 3)
    bench_steps_smoke = (2, 1)
    eval_limit = 200  # sources per domain (each makes 2 x 10 outputs per mode)

    def recipe(self, profile, **overrides):
        return recipe_and_config(profile, **overrides)

    def add_options(self, command, parser) -> None:
        if command == "train":  # the ablation's runs (the paper's Table 1 takes pieces out)
            for name, what in (
                ("ds", "the diversity-sensitive loss's initial weight (0: without it)"),
                ("sty", "the style reconstruction loss's weight"),
                ("cyc", "the cycle loss's weight (0: without it)"),
            ):
                parser.add_argument(
                    f"--lambda-{name}", type=float, metavar="W",
                    help=f"{what}; default: the profile's",
                )  # fmt: skip
            parser.add_argument(
                "--repeat-num", type=int, metavar="K",
                help="G's down/up blocks (the bottleneck at S / 2**K); default: the profile's "
                "(the official log2(S) - 4)",
            )  # fmt: skip
            parser.add_argument(
                "--f-lr", type=float, metavar="LR",
                help="the mapping network's learning rate (default: the official 1e-6)",
            )  # fmt: skip
        if command == "sample":
            parser.add_argument(
                "--domain",
                action="append",
                choices=DOMAINS,
                help="target domain (repeatable; default all three); with --reference: the "
                "reference's domain (default: the face judge's reading of it)",
            )
            parser.add_argument(
                "--reference",
                action="append",
                metavar="IMAGE",
                help="reference-guided: translate the sources into this image's style "
                "(repeatable; one row per reference)",
            )

    def train_options(self, args) -> dict:
        names = ("lambda_ds", "lambda_sty", "lambda_cyc", "repeat_num", "f_lr")
        return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}

    def generator(self, G, meta, for_evaluation=False):
        size = G.img_size

        def generate(targets, seed):  # targets: domain indices, one per test source
            targets = torch.as_tensor(targets).long()
            x = held_out_sources(len(targets), size)
            out = [translate(G, x[i : i + 1], int(t), seed + i) for i, t in enumerate(targets)]
            return torch.cat(out)

        return generate

    def sample_count(self, args) -> int:
        rows = len(args.reference) if args.reference else len(args.domain or DOMAINS)
        return args.n * (rows + 1)

    def sample_images(self, G, meta, args):
        sources = held_out_sources(args.n, G.img_size)
        if args.reference:
            refs = torch.stack([read_image(p, G.img_size) for p in args.reference])
            if args.domain and len(args.domain) not in (1, len(refs)):
                raise ValueError(
                    f"--domain: give one, or one per --reference ({len(refs)}), got "
                    f"{len(args.domain)}"
                )
            if args.domain:
                domains = [domain_index(d) for d in args.domain] * (len(refs) // len(args.domain))
            else:
                domains = judged_domain(refs)
            rows = [sources] + [
                translate(G, sources, d, references=r[None].expand(len(sources), -1, -1, -1))
                for r, d in zip(refs, domains)
            ]
            what = (
                "sources, then one row per reference ("
                + ", ".join(DOMAINS[d] for d in domains)
                + ")"
            )
            return torch.cat(rows), args.n, what
        domains = args.domain or list(DOMAINS)
        rows = [sources] + [translate(G, sources, d, seed=args.seed) for d in domains]
        return torch.cat(rows), args.n, "sources, then one row per domain: " + ", ".join(domains)

    def evaluate(self, G, meta, n, seed) -> dict:
        """``n`` sources per domain (``--n``, at most ``eval_limit``)."""
        return evaluate_translation(G, n=n, seed=seed)

    def ship_measure(self, G, meta, n):
        """The protocol at ``n`` sources per domain, and again at ``RECHECK_N`` (seed 0),
        the size the shipped-weights test re-measures."""
        metrics = summary_metrics(evaluate_translation(G, n=min(n, self.eval_limit)))
        metrics["recheck"] = summary_metrics(evaluate_translation(G, n=min(n, RECHECK_N)))
        return metrics, {}

    def ship_target(self, meta, args):
        return SHIPPED, True  # float16


CHAPTER = StarGANv2Chapter()

__all__ = [
    "CHAPTER",
    "PROFILES",
    "StarGANRecipe",
    "StarGANSettings",
    "diversity",
    "evaluate_translation",
    "explorer",
    "latent_grid",
    "kind_references",
    "load_translator",
    "payoff_figure",
    "reference_grid",
    "source_dependence",
    "summary_metrics",
    "translate",
    "translate_pairs",
]
