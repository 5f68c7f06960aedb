"""Training throughput of a recipe: what ``ganlab bench CHAPTER`` reports, for every chapter."""

from __future__ import annotations

import time

import torch

from ganlab.train.loop import Recipe, TrainConfig, Trainer, autocasts


def bench_recipe(
    recipe: Recipe, cfg: TrainConfig, device, steps: int, warmup: int, model: str, profile: str
) -> dict:
    """Images/s over ``steps`` timed steps after ``warmup`` (and compilation, when on).

    The keys are a stable interface (teachers' scripts read them): chapter, profile, device,
    model, config, batch_size, steps, seconds, images_per_second, amp_bf16, compile, torch,
    threads.
    """
    cfg.steps = warmup
    trainer = Trainer(recipe, cfg, device=device)
    trainer.fit()  # warm-up (and compilation, when on)
    dev = trainer.device
    if dev.type == "cuda":
        torch.cuda.synchronize()
    trainer.cfg.steps = warmup + steps
    start = time.perf_counter()
    trainer.fit()
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {
        "chapter": recipe.chapter,
        "profile": profile,
        "device": str(dev),
        "model": model,
        "config": recipe.config(),
        "batch_size": cfg.batch_size,
        "steps": steps,
        "seconds": round(seconds, 4),
        "images_per_second": round(cfg.batch_size * steps / seconds, 1),
        "amp_bf16": autocasts(cfg.amp, cfg.cpu_bf16, dev),
        "compile": cfg.compile,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
    }
