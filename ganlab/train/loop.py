"""The one training loop of the course.

A chapter describes *what* to train in a :class:`Recipe` (its modules, optimisers, data and
one training step); :class:`Trainer` does the rest the same way for every chapter:

* the step receives a :class:`StepContext`: the current step and the total, the modules,
  optimisers and data, ``autocast()`` for the forward passes, and ``penalty()`` for
  gradient penalties computed in float32 outside autocast, every ``k`` steps if asked
  (lazy regularisation);
* several optimisers, each with its own learning-rate schedule (``Recipe.schedules``: a
  factor as a pure function of the step, so a resumed run follows the same schedule) and
  resets of their state (``Recipe.optimizer_resets``: PGGAN restarts Adam at each resolution);

* a tqdm progress bar with live losses (read back from the device every ``log_every`` steps
  only: no host sync inside a step);
* seeded determinism: step ``t`` draws all its randomness from a seed made of
  ``(seed, rank, t)``, so a run resumed from a checkpoint continues bit for bit;
* an EMA copy of the generator;
* checkpoints in safetensors with JSON metadata, written atomically, and exact resume;
  every ``checkpoint_every`` steps and every ``checkpoint_minutes`` of wall-clock time;
* the run folder checked before the first step (``run_dir``), Ctrl-C saving a checkpoint
  at the end of the current step (``interrupt``);
* a guard that stops on NaN/inf with a clear message and keeps the last good checkpoint;
* the device, picked once (the one given, else the best available), bf16 autocast on CUDA,
  optional ``torch.compile``, fused Adam;
* DDP under ``torchrun``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from ganlab.errors import CheckpointError, NonFiniteLossError
from ganlab.train import checkpoint as ckpt
from ganlab.train import interrupt, run_dir
from ganlab.train.distributed import DistInfo, device_for, init_distributed
from ganlab.train.ema import EMA

CHECKPOINT_NAME = "checkpoint.safetensors"


@dataclass
class TrainConfig:
    """How long and how to train; the *what* is the recipe's."""

    steps: int = 1000
    batch_size: int = 64
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    ema_decay: float | None = 0.999
    amp: bool = True  # bf16 autocast on CUDA (on the CPU too only with cpu_bf16)
    # bf16 autocast on the CPU too (opt-in: fast only where the CPU has native bf16, as
    # AVX512-BF16 or AMX; emulated elsewhere, and slower); ``--cpu-bf16``
    cpu_bf16: bool = False
    compile: bool = False
    out: str | None = None  # folder for checkpoint.safetensors
    resume: bool = False
    progress: bool = True
    # replace a run already in ``out`` (else refused unless ``resume``); ``--overwrite``
    overwrite: bool = field(default_factory=run_dir.default_overwrite)
    # also checkpoint every this many minutes (0: off); ``--checkpoint-minutes``
    checkpoint_minutes: float = field(default_factory=run_dir.default_checkpoint_minutes)

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")
        if self.cpu_bf16 and not cpu_has_bf16():
            raise ValueError(
                "cpu_bf16 (--cpu-bf16) needs a CPU with native bf16 (AVX512-BF16 or AMX); "
                "this one would emulate it, slower than float32: train without it"
            )


def autocasts(amp: bool, cpu_bf16: bool, device: torch.device, gpus=("cuda",)) -> bool:
    """Whether a step on ``device`` runs in bf16 autocast: ``amp`` on a GPU (``gpus``), and on
    the CPU only with ``cpu_bf16`` (what :class:`StepContext` and ``ganlab bench`` report)."""
    return amp and (device.type in gpus or (cpu_bf16 and device.type == "cpu"))


def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bf16 natively on this CPU (AVX512-BF16 or AMX)."""
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


@dataclass(frozen=True)
class LoopSettings:
    """What a run profile says about the loop: how many steps, in what batches, how often to
    log. The chapter's own model settings sit beside it (``ganlab.chapters.contract.Profile``)."""

    steps: int
    batch_size: int
    log_every: int

    def config(self, profile: str, steps: int | None = None, **run) -> TrainConfig:
        """The loop's config: ``steps`` (default this profile's), ``log_every`` no longer than
        the run, a checkpoint every quarter of the run, ``torch.compile`` in the gpu profile;
        ``run`` overrides any :class:`TrainConfig` field (``out``, ``resume``, ``seed``...)."""
        steps = self.steps if steps is None else steps
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        run = {k: v for k, v in run.items() if v is not None}
        return TrainConfig(
            steps=steps,
            batch_size=run.pop("batch_size", self.batch_size),
            log_every=min(run.pop("log_every", self.log_every), steps),
            checkpoint_every=run.pop("checkpoint_every", max(steps // 4, 1)),
            compile=run.pop("compile", profile == "gpu"),
            **run,
        )


def adam(params, lr: float, betas: tuple[float, float], device: torch.device, **kw):
    """Adam, fused into one kernel per step on CUDA."""
    fused = device.type == "cuda"
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused, **kw)


Schedule = Callable[[int, int], float]  # (step, total) -> learning-rate factor


def linear_decay(step: int, total: int) -> float:
    """A :data:`Schedule`: the full rate for the first half of the run, then linearly to 0
    at its end (pix2pix's and SPADE's niter = niter_decay)."""
    return linear_decay_from(total // 2)(step, total)


def linear_decay_from(start: int) -> Schedule:
    """A :data:`Schedule`: the full rate before step ``start``, then linearly to 0 at the
    run's end. Absolute in steps, so a run resumed with more steps keeps its first ``start``
    steps bit for bit the same as one trained with those steps from the start."""
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"the decay's start must be a step >= 0, got {start!r}")

    def factor(step: int, total: int) -> float:
        return 1.0 if step < start else max(0.0, (total - step) / max(total - start, 1))

    return factor


class Recipe:
    """What one chapter trains. Subclasses set ``chapter`` and override the methods.

    Required: ``config``, ``build``, ``optimizers``, ``data``, ``step``. Optional:
    ``generator_spec`` (what exported weights rebuild), ``schedules``, ``optimizer_resets``.
    """

    chapter: str = ""
    ema_modules: tuple[str, ...] = ("G",)

    def config(self) -> dict:
        """A JSON-able description; a checkpoint resumes only into the same config."""
        raise NotImplementedError

    def build(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def optimizers(self, modules: dict[str, nn.Module], device) -> dict[str, Any]:
        raise NotImplementedError

    def data(self, device: torch.device) -> Any:
        """The training data, already on ``device`` (worlds are small enough)."""
        raise NotImplementedError

    def step(self, ctx: StepContext) -> dict[str, torch.Tensor]:
        """One training step; returns detached scalar loss tensors (never ``.item()``)."""
        raise NotImplementedError

    def generator_spec(self):
        """The :class:`ganlab.train.export.ModelSpec` of the generator, or None."""
        return None

    def schedules(self) -> dict[str, Schedule]:
        """Learning-rate schedules by optimiser name: ``lr = initial lr * f(step, total)``
        at every step. A pure function of the step, so a resumed run follows it exactly.
        Default: none (constant learning rates)."""
        return {}

    def optimizer_resets(self, step: int, total: int) -> tuple[str, ...]:
        """Optimisers whose state (Adam's moments) is cleared before ``step``; e.g. PGGAN
        returns ("G", "D") on the first step of each new resolution. Default: none."""
        return ()


@dataclass
class StepContext:
    """Everything a recipe's step may use: step ``step`` of ``total`` (0-based)."""

    step: int
    batch_size: int
    device: torch.device
    modules: dict[str, nn.Module]  # wrapped for training (DDP / compiled)
    raw: dict[str, nn.Module]  # the plain modules
    opts: dict[str, Any]
    data: Any
    amp: bool
    total: int = 1  # the run's number of steps (cfg.steps)
    cpu_bf16: bool = False  # with ``amp``: autocast on the CPU too (TrainConfig.cpu_bf16)
    # where ``amp`` turns bf16 autocast on; a test adds "cpu" to run that path without a GPU
    amp_devices: ClassVar[tuple[str, ...]] = ("cuda",)

    @property
    def progress(self) -> float:
        """``step / total`` in [0, 1): for fade-ins and decaying weights (PGGAN, StarGAN v2)."""
        return self.step / self.total

    @property
    def autocasting(self) -> bool:
        """Whether :meth:`autocast` turns bf16 on: CUDA with ``amp``, or the CPU asked for."""
        return autocasts(self.amp, self.cpu_bf16, self.device, self.amp_devices)

    def autocast(self):
        """bf16 autocast on CUDA when enabled (and on the CPU with ``cpu_bf16``); compute
        penalties and losses outside it."""
        if self.autocasting:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return nullcontext()

    def full_precision(self):
        """A region where autocast is off (float32), even inside ``autocast()``."""
        if self.autocasting:
            return torch.autocast(self.device.type, enabled=False)
        return nullcontext()

    def update(self, name: str, loss: torch.Tensor) -> None:
        """One optimiser step of player ``name`` on ``loss``: zero its gradients, backpropagate,
        step.

        The backward pass computes gradients for this player's trainable parameters only:
        G's loss runs through D, and the gradients of D's weights would be computed and then
        thrown away (D's own update clears them), a few per cent of every G step. Under DDP
        the full backward is kept, because DDP's reducer waits for every parameter that took
        part in the forward."""
        opt = self.opts[name]
        opt.zero_grad(set_to_none=True)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            loss.backward()
        else:
            params = [p for g in opt.param_groups for p in g["params"] if p.requires_grad]
            loss.backward(inputs=params)
        opt.step()

    def every(self, k: int) -> bool:
        """True on one step in ``k`` (steps 0, k, 2k...): lazy regularisation's schedule."""
        if not isinstance(k, int) or k < 1:
            raise ValueError(f"every k steps needs a positive integer k, got {k!r}")
        return self.step % k == 0

    def penalty(self, fn: Callable[..., torch.Tensor], *args, every: int = 1, **kwargs):
        r"""A gradient penalty, in float32 outside autocast, on one step in ``every``.

        ``fn(*args, **kwargs)`` runs under :meth:`full_precision` with every floating tensor
        argument cast to float32 (second-order gradients in bf16 lose the penalty). With
        lazy regularisation (Karras et al. 2020) the penalty runs every ``k`` steps and is
        scaled by ``k``, so its weight per step is unchanged:
        :math:`\mathcal{L} = k \cdot \text{fn}(\ldots)` when ``step % k == 0``, else
        nothing: the method returns None and the caller adds no term. When ``fn`` returns a
        tuple (a penalty and what came with it, e.g. ``return_scores=True``), only its first
        element is scaled.
        """
        if not self.every(every):
            return None
        as_fp32 = lambda v: v.float() if torch.is_tensor(v) and v.is_floating_point() else v  # noqa: E731
        with self.full_precision():
            value = fn(*(as_fp32(a) for a in args), **{k: as_fp32(v) for k, v in kwargs.items()})
        if every == 1:
            return value
        if isinstance(value, tuple):
            return (value[0] * every, *value[1:])
        return value * every

    def indices(self, n: int) -> torch.Tensor:
        """A random minibatch of indices into a dataset of ``n`` items, on the device."""
        return torch.randint(0, n, (self.batch_size,), device=self.device)


@dataclass
class TrainResult:
    step: int
    seconds: float
    history: list[dict] = field(default_factory=list)
    checkpoint: str | None = None

    @property
    def images_per_second(self) -> float:
        return 0.0 if not self.seconds else self.images / self.seconds

    images: int = 0


def step_seed(seed: int, rank: int, step: int) -> int:
    """A distinct, reproducible seed for every (run seed, process, step)."""
    return (seed * 1_000_003 + rank * 7_919 + step) % (2**63 - 1)


class Trainer:
    """Trains a recipe; ``fit()`` returns a :class:`TrainResult` with the loss history."""

    def __init__(self, recipe: Recipe, cfg: TrainConfig, device: torch.device | str | None = None):
        from ganlab.profiles import pick_device

        self.recipe, self.cfg = recipe, cfg
        base = torch.device(device) if device is not None else pick_device()  # picked once
        self.dist: DistInfo = init_distributed(base)
        self.device = device_for(self.dist, base)
        torch.manual_seed(cfg.seed)  # identical initial weights on every process
        self.raw = {k: m.to(self.device) for k, m in recipe.build().items()}
        self.opts = recipe.optimizers(self.raw, self.device)
        self.schedules = recipe.schedules()
        unknown = sorted(set(self.schedules) - set(self.opts))
        if unknown:
            have = sorted(self.opts)
            raise ValueError(f"schedules for unknown optimisers {unknown}: the recipe has {have}")
        for name in self.schedules:
            for group in self.opts[name].param_groups:
                group.setdefault("initial_lr", group["lr"])
        self.ema = {k: EMA(self.raw[k], cfg.ema_decay) for k in recipe.ema_modules if cfg.ema_decay}
        self.step = 0
        self.seconds = 0.0  # training time over every run of this checkpoint, resumes included
        self._clock: tuple[float, float] | None = None  # (seconds before, start) while fitting
        self.history: list[dict] = []
        self.data = None  # the recipe's training data, loaded by the first ``fit``
        self.modules = self._wrap(self.raw)

    # ---------------------------------------------------------------- set-up
    def _wrap(self, raw: dict[str, nn.Module]) -> dict[str, nn.Module]:
        wrapped = {}
        for name, module in raw.items():
            m = module
            trainable = any(p.requires_grad for p in module.parameters())
            if self.dist.enabled and trainable:
                ids = [self.device.index] if self.device.type == "cuda" else None
                m = DistributedDataParallel(m, device_ids=ids)
            if self.cfg.compile:
                m = torch.compile(m)
            wrapped[name] = m
        return wrapped

    @property
    def checkpoint_path(self) -> Path | None:
        return Path(self.cfg.out) / CHECKPOINT_NAME if self.cfg.out else None

    def _expect(self) -> dict:
        return {"chapter": self.recipe.chapter, "config": self.recipe.config()}

    # ---------------------------------------------------------------- checkpoints
    def state_tensors(self) -> tuple[dict, dict]:
        tensors, opt_meta = {}, {}
        for name, module in self.raw.items():
            tensors.update(ckpt.module_tensors(module, name))
        for name, ema in self.ema.items():
            tensors.update(ckpt.module_tensors(ema.module, f"ema.{name}"))
        for name, opt in self.opts.items():
            t, described = ckpt.optimizer_tensors(opt, f"opt.{name}")
            tensors.update(t)
            opt_meta[name] = described
        return tensors, opt_meta

    def save_checkpoint(self, path: Path | None = None) -> Path | None:
        path = path or self.checkpoint_path
        if path is None or not self.dist.is_main:
            return None
        self._assert_finite_weights()
        tensors, opt_meta = self.state_tensors()
        spec = self.recipe.generator_spec()
        meta = {
            **self._expect(),
            **({"generator": spec.to_json()} if spec is not None else {}),
            "kind": "checkpoint",
            "step": self.step,
            "seconds": round(self.seconds, 2),
            "train": asdict(self.cfg),
            "optimizers": opt_meta,
            "history": self.history,
            "torch": torch.__version__,
        }
        return ckpt.save_state(path, tensors, meta)

    def load_checkpoint(self, path: Path) -> None:
        tensors, meta = ckpt.load_state(path, expect=self._expect())
        if meta.get("kind") != "checkpoint":
            raise CheckpointError(f"{path} holds {meta.get('kind')!r} weights, not a checkpoint")
        for name, module in self.raw.items():
            ckpt.load_module(module, tensors, name)
        for name, ema in self.ema.items():
            ckpt.load_module(ema.module, tensors, f"ema.{name}")
        for name, opt in self.opts.items():
            ckpt.load_optimizer(opt, tensors, meta["optimizers"][name], f"opt.{name}")
        self.step = int(meta["step"])
        self.seconds = float(meta.get("seconds", 0.0))
        self.history = list(meta.get("history", []))
        for ema in self.ema.values():
            ema.updates = self.step  # one EMA update per step: the warm-up continues exactly

    def _assert_finite_weights(self) -> None:
        params = [p for m in self.raw.values() for p in m.parameters()]
        if params and not bool(torch.stack([p.isfinite().all() for p in params]).all()):
            raise NonFiniteLossError(
                f"training diverged: weights became NaN/inf by step {self.step}; the last good "
                f"checkpoint was kept: {ckpt.describe_kept(self.checkpoint_path)}"
            )

    # ---------------------------------------------------------------- training
    def fit(self, callback=None) -> TrainResult:
        """Train until ``cfg.steps``; ``callback(trainer)`` runs after every step."""
        cfg = self.cfg
        path = self.checkpoint_path
        run_dir.prepare_run(self)  # refuse to replace a run, check --out, remove orphan .tmp
        if cfg.resume and path is not None:
            if path.exists():
                self.load_checkpoint(path)
                self._say(f"resumed from {path} at step {self.step}")
            else:
                self._say(f"no checkpoint at {path}; starting from step 0")
        if self.data is None:  # loaded once: a second ``fit`` (more steps) reuses it
            self.data = self.recipe.data(self.device)
        data = self.data
        from tqdm.auto import tqdm

        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            desc=f"train {self.recipe.chapter}",
            disable=not (cfg.progress and self.dist.is_main),
            dynamic_ncols=True,
        )
        sums: dict[str, torch.Tensor] = {}
        count, start, first = 0, time.perf_counter(), self.step
        seconds_before = self.seconds
        self._clock = (seconds_before, start)
        for module in self.raw.values():
            module.train()
        clock = run_dir.CheckpointClock(cfg.checkpoint_minutes)
        with interrupt.GracefulStop(self) as stop:  # Ctrl-C: finish the step, save, stop
            while self.step < cfg.steps:
                torch.manual_seed(step_seed(cfg.seed, self.dist.rank, self.step))
                self._before_step()
                ctx = StepContext(
                    self.step,
                    cfg.batch_size,
                    self.device,
                    self.modules,
                    self.raw,
                    self.opts,
                    data,
                    cfg.amp,
                    cfg.steps,
                    cfg.cpu_bf16,
                )
                losses = self.recipe.step(ctx)
                for ema in self.ema.values():
                    ema.update()
                for k, v in losses.items():  # accumulate on the device: no host sync
                    sums[k] = sums[k] + v.detach().float() if k in sums else v.detach().float()
                count += 1
                self.step += 1
                bar.update(1)
                at_ckpt = path is not None and self.step % cfg.checkpoint_every == 0
                if self.step % cfg.log_every == 0 or self.step == cfg.steps or at_ckpt:
                    self._log(sums, count, bar)
                    sums, count = {}, 0
                on_time = path is not None and clock.due()  # no log: the history stays regular
                if at_ckpt or on_time or (path is not None and self.step == cfg.steps):
                    self.seconds = seconds_before + time.perf_counter() - start
                    self.save_checkpoint()
                    clock.reset()
                if callback is not None:
                    callback(self)
                stop.check()  # after Ctrl-C: save at this step boundary, raise TrainingInterrupted
        bar.close()
        self._clock = None
        seconds = time.perf_counter() - start
        self.seconds = seconds_before + seconds
        images = (self.step - first) * cfg.batch_size * self.dist.world_size
        return TrainResult(self.step, seconds, self.history, str(path) if path else None, images)

    def elapsed(self) -> float:
        """Training seconds so far, resumes included; also in the middle of ``fit``."""
        if self._clock is None:
            return self.seconds
        before, start = self._clock
        return before + time.perf_counter() - start

    def _before_step(self) -> None:
        """Optimiser resets and learning rates for this step: functions of the step alone."""
        total = self.cfg.steps
        for name in self.recipe.optimizer_resets(self.step, total):
            self.opts[name].state.clear()  # Adam's moments and step count start again
        for name, schedule in self.schedules.items():
            factor = schedule(self.step, total)
            for group in self.opts[name].param_groups:
                group["lr"] = group["initial_lr"] * factor

    def _log(self, sums: dict[str, torch.Tensor], count: int, bar) -> None:
        if not sums:
            return
        keys = sorted(sums)
        # a recipe may log host scalars (a schedule's level) beside device tensors
        logged = [sums[k].to(self.device, torch.float32) for k in keys]
        values = (torch.stack(logged) / count).tolist()  # one sync per log
        record = {"step": self.step, **{k: v for k, v in zip(keys, values)}}
        bad = [k for k, v in record.items() if k != "step" and not math.isfinite(v)]
        if bad:
            raise NonFiniteLossError(
                f"training diverged: {', '.join(bad)} became NaN/inf between steps "
                f"{self.step - count} and {self.step}; training stopped. Last good checkpoint "
                f"kept: {ckpt.describe_kept(self.checkpoint_path)}. "
                "Try a lower learning rate or check the data range."
            )
        self.history.append(record)
        bar.set_postfix({k: f"{v:.3f}" for k, v in record.items() if k != "step"})

    def _say(self, text: str) -> None:
        if self.dist.is_main:
            print(text)

    # ---------------------------------------------------------------- outputs
    def generator(self, name: str = "G") -> nn.Module:
        """The EMA generator if kept, else the raw one, in eval mode."""
        module = self.ema[name].module if name in self.ema else self.raw[name]
        return module.eval()
