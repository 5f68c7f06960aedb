"""The chapter contract: what every chapter declares, in one place.

A chapter is a module ``ganlab/chapters/<name>.py`` whose ``CHAPTER`` is an instance of a
:class:`Chapter` subclass. It declares:

* ``name`` and ``world`` (the plan's entry in :mod:`ganlab.chapters` says the rest);
* ``profiles``: one :class:`Profile` per run profile (smoke, cpu, gpu), each a typed
  ``model`` settings dataclass of the chapter's own and the loop's
  :class:`~ganlab.train.loop.LoopSettings`;
* the **recipe** (:meth:`Chapter.recipe`): a :class:`~ganlab.train.loop.Recipe` with the
  models, losses and one training step, and its :class:`~ganlab.train.loop.TrainConfig`;
* the **weights spec**: the recipe's ``generator_spec()``; exported weights carry it and
  :func:`ganlab.train.export.load_generator` rebuilds any chapter's generator from it;
* **generation**: :meth:`Chapter.generator` turns a loaded generator into
  ``generate(conditions, seed) -> images`` (labels for digits, captions for birds);
* **evaluation**: :meth:`Chapter.evaluate`, the world's protocol from :mod:`ganlab.evaluation`;
* its own command-line options (:meth:`Chapter.add_options`), the only per-chapter part of
  the five commands, which :mod:`ganlab.chapters.commands` writes once for every chapter.

:class:`CaptionChapter` fills in what the birds world's chapters share (captions as the
conditions, the birds protocol, standing BatchNorm statistics at export).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import torch
from torch import nn

from ganlab.train.loop import LoopSettings, Recipe, TrainConfig

S = TypeVar("S")
Generate = Callable[[Any, int], torch.Tensor]  # (conditions, seed) -> images in [-1, 1]
RUN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}
LOOP_FIELDS = {f.name for f in dataclasses.fields(LoopSettings)}


@dataclass(frozen=True)
class Profile(Generic[S]):
    """A run profile's settings: the chapter's ``model`` settings and the ``loop``'s."""

    model: S
    loop: LoopSettings


def split_overrides(profile: Profile[S], overrides: Mapping[str, Any]) -> tuple[S, dict, dict]:
    """Apply command-line or notebook overrides to a profile.

    -> (model settings with their overrides, the loop and run overrides for
    :meth:`LoopSettings.config`, everything else: the recipe's own arguments such as
    ``variant`` or ``data_root``). ``None`` values mean "not given" and are dropped.
    """
    given = {k: v for k, v in overrides.items() if v is not None}
    fields = {f.name for f in dataclasses.fields(profile.model)}
    model = dataclasses.replace(profile.model, **{k: v for k, v in given.items() if k in fields})
    loop = {k: v for k, v in given.items() if k not in fields and k in RUN_FIELDS | LOOP_FIELDS}
    rest = {k: v for k, v in given.items() if k not in fields and k not in loop}
    return model, loop, rest


@dataclass(frozen=True)
class Run:
    """One training run a ``ganlab train`` command makes: its sub-folder (None: ``--out``
    itself), its recipe and loop config, and what its manifest adds (``variant``...)."""

    folder: str | None
    recipe: Recipe
    cfg: TrainConfig
    manifest: dict


class Chapter:
    """The contract of one chapter (see the module docstring). Subclasses set the class
    attributes and implement :meth:`recipe` and :meth:`generator`."""

    name: str = ""
    world: str = ""  # "digits", "birds" or "faces": which ganlab.evaluation module measures it
    profiles: Mapping[str, Profile] = {}
    shipped: str = ""  # the default weights: ganlab/weights/<shipped>.safetensors
    sample_out: str = "samples.png"
    bench_steps: tuple[int, int] = (20, 5)  # timed steps, warm-up steps (cpu and gpu)
    bench_steps_smoke: tuple[int, int] = (3, 2)
    eval_limit: int | None = None  # the most samples ``evaluate`` generates, if capped

    # ------------------------------------------------------------ the recipe
    def recipe(self, profile: str, **overrides) -> tuple[Recipe, TrainConfig]:
        """The recipe and loop config of ``profile``, with overrides of any model setting,
        loop setting (``steps``, ``batch_size``...), run field (``out``, ``resume``, ``seed``,
        ``compile``, ``progress``) or recipe argument (``variant``, ``data_root``...)."""
        raise NotImplementedError

    def runs(
        self, profile: str, args: argparse.Namespace, overrides: dict, results: dict
    ) -> Iterator[Run]:
        """The runs ``ganlab train`` makes, in order; ``overrides`` holds the common options
        (steps, out, resume, seed, data_root). A generator: a run is planned only once the
        runs before it finished (``results``: their manifests by folder), and a chapter
        refuses bad options before the first. Default: one run of :meth:`recipe`."""
        recipe, cfg = self.recipe(profile, **overrides, **self.train_options(args))
        yield Run(None, recipe, cfg, self.manifest_extra(recipe))

    def bench_recipe(self, profile: str, args: argparse.Namespace) -> tuple[Recipe, TrainConfig]:
        """What ``ganlab bench`` times. Default: the profile's recipe."""
        return self.recipe(profile, progress=False)

    def train_options(self, args: argparse.Namespace) -> dict:
        """The recipe arguments this chapter reads from its own ``train`` options."""
        return {}

    def manifest_extra(self, recipe: Recipe) -> dict:
        """What a run's manifest records besides the common keys (e.g. the variant)."""
        return {}

    # ------------------------------------------------------------ options
    def add_options(self, command: str, parser: argparse.ArgumentParser) -> None:
        """Add this chapter's own options of ``command`` (train, sample, evaluate, bench,
        ship) to ``parser``; the common ones are the command's. Default: none."""

    # ------------------------------------------------------------ weights
    def default_weights(self, args: argparse.Namespace | None = None) -> str:
        """The shipped weights' name a command loads when no ``--weights`` is given."""
        return self.shipped

    def load(self, path=None, device="cpu") -> tuple[nn.Module, dict]:
        """A generator from exported weights or a checkpoint (its EMA copy); None: shipped."""
        from ganlab.train.export import load_generator
        from ganlab.weights import shipped

        return load_generator(shipped(self.shipped) if path is None else path, self.name, device)

    def prepare_export(self, G: nn.Module, recipe: Recipe, device, data=None) -> dict:
        """Called on the (EMA) generator before it is exported; returns manifest additions.
        ``data``: the recipe's training data when already loaded (a snapshot mid-run).
        Default: nothing to do."""
        return {}

    # ------------------------------------------------------------ generation
    def generator(self, G: nn.Module, meta: dict, for_evaluation: bool = False) -> Generate:
        """``generate(conditions, seed) -> images`` (N, C, H, W) in [-1, 1], on the CPU:
        ``G`` with whatever else it needs (a text encoder...). ``for_evaluation``: at the
        resolution the world's judge reads."""
        raise NotImplementedError

    def sample_images(self, G, meta, args) -> tuple[torch.Tensor, int, str]:
        """``ganlab sample``: (images, images per row, what was drawn, in words)."""
        raise NotImplementedError

    def sample_count(self, args: argparse.Namespace) -> int:
        """How many images ``ganlab sample`` will draw with these options (checked first)."""
        raise NotImplementedError

    # ------------------------------------------------------------ evaluation
    def evaluate(self, G, meta: dict, n: int, seed: int) -> dict:
        """``ganlab evaluate``'s JSON, less ``chapter`` and ``weights`` (added by the command)."""
        raise NotImplementedError

    def ship_measure(self, G, meta: dict, n: int) -> tuple[dict, dict]:
        """``ganlab ship``: (metrics for the manifest, other manifest additions)."""
        raise NotImplementedError

    def ship_target(self, meta: dict, args: argparse.Namespace) -> tuple[str, bool]:
        """(the shipped name, store float16?) of a run's exported weights."""
        return self.shipped, False

    def selection_score(self, G, meta: dict, n: int) -> dict:
        """``ganlab ship --pick-snapshot``: a score of one snapshot, lower is better, measured
        away from the split the shipped numbers come from (``{"frechet_distance": ..., "split",
        "n"}``)."""
        raise ValueError(f"{self.name} has no snapshot score: --pick-snapshot is not supported")


# ---------------------------------------------------------------- the birds world
STANDING_BIRDS = 1000  # training birds whose captions recalibrate a checkpoint's BatchNorm


class CaptionChapter(Chapter):
    """What the text-to-image chapters on the birds world share: captions are the conditions
    (``--caption``), the birds protocol measures them on the test and zero-shot splits, and
    the exported generator gets standing BatchNorm statistics."""

    world = "birds"
    eval_limit = 2000
    bn_batches = 20  # batches for the standing BatchNorm statistics
    bn_batch_size = 64

    def add_options(self, command: str, parser: argparse.ArgumentParser) -> None:
        from ganlab.data.birds.render import FRAMINGS, SCENES

        if command == "sample":
            parser.add_argument(
                "--caption", action="append", help="caption(s) to draw (repeatable)"
            )
        if command == "train":
            parser.add_argument(
                "--framing", choices=tuple(FRAMINGS),
                help="the world's birds: whole scene, CUB crop or tight crop (default: profile's)",
            )  # fmt: skip
            parser.add_argument(
                "--scene", choices=tuple(SCENES),
                help="plain: backgrounds without details (default: the profile's)",
            )  # fmt: skip

    def train_options(self, args: argparse.Namespace) -> dict:
        """``--framing`` / ``--scene`` when given (and each chapter's own options)."""
        world = {k: getattr(args, k, None) for k in ("framing", "scene")}
        return {k: v for k, v in world.items() if v}

    @staticmethod
    def add_r1_options(parser: argparse.ArgumentParser, gamma_default: str) -> None:
        """``--r1-gamma`` / ``--r1-every``: a lazy R1 on D's real pairs, a course stabiliser
        (``gamma_default`` says what the profiles use)."""
        parser.add_argument(
            "--r1-gamma", type=float, metavar="G",
            help=f"R1 penalty weight on D's real pairs (default: {gamma_default})",
        )  # fmt: skip
        parser.add_argument(
            "--r1-every", type=int, metavar="K",
            help="lazy R1: every K steps, scaled by K (default 16, as StyleGAN2)",
        )  # fmt: skip

    @staticmethod
    def r1_options(args: argparse.Namespace) -> dict:
        """The given ones of ``--r1-gamma`` / ``--r1-every`` as recipe overrides."""
        r1 = {k: getattr(args, k, None) for k in ("r1_gamma", "r1_every")}
        return {k: v for k, v in r1.items() if v is not None}

    @staticmethod
    def add_width_options(parser: argparse.ArgumentParser, paper: tuple[int, int]) -> None:
        """``--ngf`` / ``--ndf``: G's and D's base widths (``paper``: the official ones)."""
        for option, who, official in zip(("--ngf", "--ndf"), ("G", "D"), paper):
            parser.add_argument(
                option, type=int, metavar="N",
                help=f"{who}'s base width (default: the profile's; the paper's is {official})",
            )  # fmt: skip

    @staticmethod
    def width_options(args: argparse.Namespace) -> dict:
        """The given ones of ``--ngf`` / ``--ndf`` as model overrides."""
        widths = {k: getattr(args, k, None) for k in ("ngf", "ndf")}
        return {k: v for k, v in widths.items() if v is not None}

    def text_encoder(self):
        """The frozen caption encoder this chapter's generator reads (kind: joint or damsm)."""
        raise NotImplementedError

    def standing_inputs(self, G, recipe, data, gen: torch.Generator, device) -> tuple:
        """One batch of ``bn_batch_size`` generator inputs for the standing statistics."""
        raise NotImplementedError

    @torch.no_grad()
    def standing_statistics(self, G, recipe, data, device, batches: int | None = None):
        """Recompute G's BatchNorm statistics on fresh batches of the training texts (see
        :func:`ganlab.train.ema.recalibrate_batchnorm`); a frozen ``G.stage1`` keeps its own."""
        from ganlab.train.ema import recalibrate_batchnorm

        gen = torch.Generator().manual_seed(0)
        dev = torch.device(device)
        cuda = [dev.index or 0] if dev.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):  # the recipes' caption picks draw from the
            torch.manual_seed(0)  # global stream: seeded here, and left as it was outside
            inputs = [
                self.standing_inputs(G, recipe, data, gen, device)
                for _ in range(self.bn_batches if batches is None else batches)
            ]
        return recalibrate_batchnorm(G, inputs, keep=getattr(G, "stage1", None))

    def recipe_class(self, meta: dict) -> type[Recipe]:
        """The recipe class that trained weights with this ``meta`` (for :meth:`recipe_of`)."""
        raise NotImplementedError

    def recipe_of(self, meta: dict) -> Recipe:
        """The recipe of a checkpoint, rebuilt from its recorded config, reading a sample of
        ``STANDING_BIRDS`` training birds: what its standing statistics draw captions from."""
        cls = self.recipe_class(meta)
        known = {f.name for f in dataclasses.fields(cls) if f.init}
        kwargs = {k: v for k, v in meta["config"].items() if k in known}
        if "betas" in kwargs:
            kwargs["betas"] = tuple(kwargs["betas"])
        return cls(**{**kwargs, "n_birds": STANDING_BIRDS})

    def load(self, path=None, device="cpu") -> tuple[nn.Module, dict]:
        """As :meth:`Chapter.load`; a checkpoint's EMA generator first gets standing BatchNorm
        statistics, as an export does: it carries the raw generator's running statistics,
        which do not match the averaged weights (its samples and numbers would mislead)."""
        G, meta = super().load(path, device)
        if meta.get("kind") == "checkpoint":
            extra = self.prepare_export(G, self.recipe_of(meta), device)
            meta = {**meta, "manifest": {**meta.get("manifest", {}), **extra}}
        return G, meta

    def prepare_export(self, G, recipe, device, data=None) -> dict:
        data = recipe.data(device) if data is None else data
        self.standing_statistics(G, recipe, data, device)
        return {
            "batchnorm": f"standing statistics, {self.bn_batches} batches of {self.bn_batch_size}"
        }

    def sample_count(self, args) -> int:
        from ganlab.evaluation.birds import DEFAULT_CAPTIONS

        return len(args.caption or DEFAULT_CAPTIONS) * args.n

    def sample_images(self, G, meta, args):
        from ganlab.evaluation.birds import DEFAULT_CAPTIONS

        captions = args.caption or list(DEFAULT_CAPTIONS)
        generate = self.generator(G, meta)
        images = torch.cat([generate([c] * args.n, args.seed) for c in captions])
        return images, args.n, f"{len(captions)} captions x {args.n}"

    def evaluate_generator(self, G, meta, n=1000, split="test", seed=0) -> dict:
        """The birds protocol (:mod:`ganlab.evaluation.birds`) on ``n`` captions of ``split``."""
        from ganlab.evaluation.birds import evaluate_text_to_image

        generate = self.generator(G, meta, for_evaluation=True)
        # a model trained on a simpler world meets that world
        return evaluate_text_to_image(generate, n=n, split=split, seed=seed, **world_of(meta))

    def evaluate(self, G, meta, n, seed) -> dict:
        from ganlab.evaluation.birds import SPLITS

        return {s: self.evaluate_generator(G, meta, n, s, seed) for s in SPLITS}

    def ship_measure(self, G, meta, n) -> tuple[dict, dict]:
        """The birds protocol on both splits; besides, for the payoff bars: the reference
        ladder of the model's world at the same n, and the per-caption diversity of the model
        and of real birds (50 test captions, 16 samples each)."""
        from ganlab.evaluation.birds import SPLITS, reference_ladder, summary_metrics

        metrics = {s: summary_metrics(self.evaluate_generator(G, meta, n, s)) for s in SPLITS}
        world = world_of(meta)
        extra = {
            "world": world,
            "ladder": reference_ladder(n, **world)["ladder"],
            "caption_diversity": self.caption_diversity(G, meta),
        }
        return metrics, extra

    def selection_score(self, G, meta, n) -> dict:
        """Judge FD on the first ``n`` captions of the training split
        (:func:`ganlab.evaluation.birds.selection_fd`)."""
        from ganlab.evaluation.birds import selection_fd

        generate = self.generator(G, meta, for_evaluation=True)
        return selection_fd(generate, n, **world_of(meta))

    def caption_diversity(self, G, meta, n_captions: int = 50, per_caption: int = 16) -> dict:
        """Mean pairwise judge-feature distance of ``per_caption`` samples of each of
        ``n_captions`` test captions (collapse across seeds shows as a small number), beside
        what real birds matching the same captions give (:mod:`ganlab.evaluation.birds`)."""
        from ganlab.evaluation.birds import (
            caption_diversity,
            diversity_captions,
            real_caption_diversity,
            upsample,
        )

        draw = self.generator(G, meta, for_evaluation=True)
        captions = diversity_captions(n_captions)
        model = caption_diversity(
            lambda caps, seed: upsample(draw(caps, seed)), captions, per_caption
        )
        real = real_caption_diversity(n_captions, per_caption, **world_of(meta))
        return {"model": model, "real": real}


def birds_world(settings, overrides: Mapping[str, Any]) -> dict:
    """The birds world a caption chapter's recipe trains on: the profile settings' ``framing``
    and ``scene`` (given overrides already applied), except with a real dataset
    (``data_root``), where the world's framing does not apply unless asked for."""
    asked = overrides.get("framing") or overrides.get("scene")
    if overrides.get("data_root") and not asked:
        return {}
    return {"framing": settings.framing, "scene": settings.scene}


def world_of(meta: dict) -> dict:
    """The birds world a run's weights were trained on, from their config (default: whole)."""
    cfg = meta.get("config", {})
    return {k: cfg.get(k, "full") for k in ("framing", "scene")}


def world_config(recipe) -> dict:
    """The recipe's birds world for its config, only where it is not the default (so configs
    of runs on the whole scene read as they always did)."""
    return {k: getattr(recipe, k) for k in ("framing", "scene") if getattr(recipe, k) != "full"}


def shipped_path(name: str) -> Path:
    """``ganlab/weights/NAME.safetensors`` (a clear error if it is not shipped)."""
    from ganlab.weights import shipped

    return shipped(name)
