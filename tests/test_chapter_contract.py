"""The chapter contract: typed profiles, every profile's recipe runs, the model spec in the
weights, and what the loop gives a step (step and total, schedules, optimiser resets, lazy
fp32 penalties)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from ganlab.chapters import WRITTEN, get_chapter
from ganlab.chapters.contract import Chapter, Profile
from ganlab.errors import CheckpointError
from ganlab.models import stackgan as SM
from ganlab.train import checkpoint as ckpt
from ganlab.train.export import ModelSpec, load_generator, save_generator
from ganlab.train.loop import LoopSettings, Recipe, StepContext, TrainConfig, Trainer, adam

PROFILE_NAMES = ("smoke", "cpu", "gpu")
WORLDS = ("digits", "birds", "faces", "landscapes")


@pytest.mark.parametrize("name", WRITTEN)
def test_every_chapter_declares_the_contract(name):
    chapter = get_chapter(name)
    assert isinstance(chapter, Chapter) and chapter.world in WORLDS
    assert set(chapter.profiles) == set(PROFILE_NAMES)
    for profile in chapter.profiles.values():
        assert isinstance(profile, Profile) and isinstance(profile.loop, LoopSettings)
        assert dataclasses.is_dataclass(profile.model) and not isinstance(profile.model, dict)


# SPADE's gpu models (256 px) take two CPU minutes for two steps at batch 2; one image per
# step runs the same layers. The other chapters need pairs (wrong captions, minibatch std).
# The gpu profile's models run one step (a CPU step of SPADE's takes ~40 s): the smoke and
# cpu profiles' schedules run in full elsewhere.
SMALLEST_BATCH = {"spade": 1}


def runs_of(name: str, profile: str, tmp_path, steps: int = 2) -> list[tuple[Recipe, TrainConfig]]:
    """The recipes ``ganlab train`` runs in ``profile``, at batch 2 (SPADE 1) for ``steps``
    steps on few birds (the data, not the models, shrink); StackGAN's Stage-II on a fresh
    Stage-I."""
    chapter = get_chapter(name)
    batch = SMALLEST_BATCH.get(name, 2)
    small = dict(steps=steps, batch_size=batch, compile=False, progress=False, ema_decay=None)
    if chapter.world == "birds":
        small["n_birds"] = 8
    if chapter.world == "faces":
        small["n_faces"] = 8
    if chapter.world == "landscapes":
        small["n_train"] = 8
    if name != "stackgan":
        return [chapter.recipe(profile, **small)]
    stage1 = chapter.recipe(profile, 1, **small)
    G1 = stage1[0].build()["G"]
    path = save_generator(tmp_path / "s1.safetensors", G1, stage1[0].generator_spec(),
                          {"chapter": name, "config": stage1[0].config()})  # fmt: skip
    return [stage1, chapter.recipe(profile, 2, stage1_path=str(path), **small)]


@pytest.mark.parametrize("name", WRITTEN)
def test_the_smoke_schedule_trains_under_bf16_autocast(name, tmp_path, monkeypatch):
    """The CUDA path's bf16 autocast, run on the CPU: the whole smoke schedule (PGGAN's
    fade-ins included) with mixed dtypes, so a dtype slip shows here rather than on a GPU."""
    monkeypatch.setattr(StepContext, "amp_devices", ("cuda", "cpu"))
    steps = get_chapter(name).profiles["smoke"].loop.steps
    for recipe, cfg in runs_of(name, "smoke", tmp_path):
        cfg.steps, cfg.amp = steps, True
        result = Trainer(recipe, cfg, device="cpu").fit()
        assert result.step == steps
        assert all(torch.isfinite(torch.tensor(v)) for v in result.history[-1].values())


@pytest.mark.slow  # AttnGAN's gpu discriminators hold 98M parameters: ~25 s CPU to build and step
@pytest.mark.parametrize("name", WRITTEN)
def test_gpu_profile_recipes_train_one_step_on_the_cpu(name, tmp_path):
    """The gpu profile's models, exactly as a GPU user gets them, run a step at batch 2
    (SPADE 1) on the CPU (no EMA copy, no compilation): a config that never ran cannot ship.
    The first step is also a lazy R1's (it runs at step 0)."""
    for recipe, cfg in runs_of(name, "gpu", tmp_path, steps=1):
        assert cfg.batch_size == SMALLEST_BATCH.get(name, 2) and cfg.steps == 1
        trainer = Trainer(recipe, cfg, device="cpu")
        result = trainer.fit()
        assert result.step == 1 and result.history
        assert all(torch.isfinite(torch.tensor(v)) for k, v in result.history[-1].items())
        spec = recipe.generator_spec()  # what exported weights rebuild
        rebuilt = spec.build()
        assert rebuilt.state_dict().keys() == trainer.raw["G"].state_dict().keys()


@pytest.mark.parametrize("name", WRITTEN)
def test_profiles_differ_only_in_scale(name):
    """Each profile builds (smoke and cpu too); the cpu profile is bigger than smoke."""
    chapter = get_chapter(name)
    sizes = {}
    for profile in ("smoke", "cpu"):
        recipe, cfg = chapter.recipe(profile, progress=False, compile=False)
        G = recipe.generator_spec().build()
        sizes[profile] = sum(p.numel() for p in G.parameters())
        assert cfg.batch_size == chapter.profiles[profile].loop.batch_size
    assert sizes["cpu"] > sizes["smoke"]


# ---------------------------------------------------------------- the model spec
def test_a_nested_spec_round_trips_through_json():
    stage1 = ModelSpec.of(SM.StageIGenerator, text_dim=1024, ngf=8, image_size=16)
    spec = ModelSpec.of(SM.StageIIGenerator, stage1=stage1, ngf=8, num_residual=1)
    doc = spec.to_json()
    assert doc["class"] == "ganlab.models.stackgan.StageIIGenerator"
    assert doc["kwargs"]["stage1"]["kwargs"]["image_size"] == 16
    again = ModelSpec.from_json(doc)
    assert again == spec
    G = again.build()
    assert isinstance(G, SM.StageIIGenerator) and G.image_size == 64


def test_exported_weights_rebuild_their_model_and_refuse_foreign_classes(tmp_path):
    spec = ModelSpec.of(SM.StageIGenerator, text_dim=1024, ngf=8, image_size=16)
    G = spec.build().eval()
    path = save_generator(tmp_path / "g.safetensors", G, spec, {"chapter": "stackgan"})
    loaded, meta = load_generator(path, "stackgan")
    assert meta["kind"] == "weights" and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(G.state_dict().values(),
                                                 loaded.state_dict().values()))  # fmt: skip
    with pytest.raises(CheckpointError, match="not 'cgan'"):
        load_generator(path, "cgan")
    tensors, meta = ckpt.load_state(path)
    for bad in ("builtins.eval", "os.system", "ganlab.train.loop.Trainer", "ganlab.models.x.Y"):
        ckpt.save_state(tmp_path / "bad.safetensors", tensors,
                        {**meta, "generator": {"class": bad, "kwargs": {}}})  # fmt: skip
        with pytest.raises(CheckpointError, match="ganlab model|does not exist|not a torch"):
            load_generator(tmp_path / "bad.safetensors")
    del meta["generator"]
    ckpt.save_state(tmp_path / "old.safetensors", tensors, meta)
    with pytest.raises(CheckpointError, match="no model spec"):
        load_generator(tmp_path / "old.safetensors")


# ---------------------------------------------------------------- what the loop gives a step
class Toy(Recipe):
    """Two players, two optimisers: G on a cosine schedule, D constant; D's Adam is reset at
    step 3; a penalty every 2 steps. The step records what it was given."""

    chapter = "toy"
    ema_modules = ()

    def __init__(self):
        self.seen = []

    def config(self):
        return {"toy": 1}

    def build(self):
        return {"G": nn.Linear(3, 2), "D": nn.Linear(2, 1)}

    def optimizers(self, modules, device):
        return {k: adam(m.parameters(), 0.1, (0.5, 0.9), device) for k, m in modules.items()}

    def data(self, device):
        return torch.randn(16, 3)

    def schedules(self):
        return {"G": lambda step, total: 0.5 ** (step / total)}

    def optimizer_resets(self, step, total):
        return ("D",) if step == 3 else ()

    def step(self, ctx: StepContext):
        G, D = ctx.modules["G"], ctx.modules["D"]
        had_state = bool(ctx.opts["D"].state)
        x = ctx.data[ctx.indices(len(ctx.data))]
        with ctx.autocast():
            score = D(G(x)).mean()
        penalty = ctx.penalty(lambda w: (w**2).sum(), D.weight, every=2)
        loss = score + (penalty if penalty is not None else 0.0)
        for opt in ctx.opts.values():
            opt.zero_grad()
        loss.backward()
        for opt in ctx.opts.values():
            opt.step()
        self.seen.append({
            "step": ctx.step, "total": ctx.total, "progress": ctx.progress,
            "lr_G": ctx.opts["G"].param_groups[0]["lr"],
            "lr_D": ctx.opts["D"].param_groups[0]["lr"],
            "penalty": None if penalty is None else float(penalty.detach()),
            "weight_sq": float((D.weight.detach() ** 2).sum()) if penalty is not None else None,
            "D_state_before": had_state,
        })  # fmt: skip
        return {"loss": loss.detach()}


def toy_trainer(out=None, steps=6, resume=False):
    cfg = TrainConfig(steps=steps, batch_size=4, log_every=1, checkpoint_every=2, out=out,
                      resume=resume, progress=False, ema_decay=None)  # fmt: skip
    return Trainer(Toy(), cfg, device="cpu")


def test_the_step_gets_step_total_schedules_resets_and_lazy_penalties():
    trainer = toy_trainer()
    trainer.fit()
    seen = trainer.recipe.seen
    assert [s["step"] for s in seen] == list(range(6)) and {s["total"] for s in seen} == {6}
    assert [s["progress"] for s in seen] == [i / 6 for i in range(6)]
    for s in seen:
        assert s["lr_G"] == pytest.approx(0.1 * 0.5 ** (s["step"] / 6))
        assert s["lr_D"] == 0.1  # no schedule: constant
    # the penalty ran on steps 0, 2, 4 only, scaled by k = 2 (lazy regularisation)
    assert [s["penalty"] is not None for s in seen] == [True, False] * 3
    # Adam's state of D was cleared before step 3 and rebuilt after it
    assert [s["D_state_before"] for s in seen] == [False, True, True, False, True, True]


def test_penalty_scale_and_full_precision():
    ctx = StepContext(4, 2, torch.device("cpu"), {}, {}, {}, None, amp=True, total=10)
    x = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    value = ctx.penalty(lambda v: (v**2).sum(), x, every=4)
    assert value.dtype == torch.float32 and value.item() == pytest.approx(4 * 5.0)
    assert ctx.penalty(lambda v: v.sum(), x, every=3) is None  # 4 % 3 != 0
    with pytest.raises(ValueError, match="positive integer"):
        ctx.every(0)
    with ctx.autocast(), ctx.full_precision():  # CPU: both are no-ops, nesting works
        assert torch.ones(2).dtype == torch.float32


def test_a_scheduled_run_resumes_bit_for_bit(tmp_path):
    """Schedules and resets are functions of the step: a run stopped after its checkpoint at
    step 2 and resumed ends with the weights of a run never stopped."""
    straight = toy_trainer(str(tmp_path / "a"))
    straight.fit()

    class Crash(RuntimeError):
        pass

    def crash(trainer):
        if trainer.step == 3:
            raise Crash

    with pytest.raises(Crash):
        toy_trainer(str(tmp_path / "b")).fit(callback=crash)
    resumed = toy_trainer(str(tmp_path / "b"), resume=True)
    resumed.fit()
    a, b = straight.state_tensors()[0], resumed.state_tensors()[0]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), "weights or optimiser states differ"


def test_the_course_penalties_run_through_the_step_context():
    """``ganlab.nn.penalties`` plug into ``ctx.penalty``: R1 every 16 steps, scaled by 16."""
    from ganlab.nn.penalties import r1_penalty

    torch.manual_seed(0)
    D = nn.Sequential(nn.Flatten(), nn.Linear(12, 1))
    x = torch.randn(4, 3, 2, 2)
    lazy = StepContext(32, 4, torch.device("cpu"), {}, {}, {}, None, amp=True, total=100)
    value = lazy.penalty(r1_penalty, D, x, every=16, gamma=10.0)
    assert torch.allclose(value, 16 * r1_penalty(D, x, gamma=10.0))
    value.backward()  # the penalty trains D
    assert D[1].weight.grad is not None
    skipped = StepContext(33, 4, torch.device("cpu"), {}, {}, {}, None, amp=True, total=100)
    assert skipped.penalty(r1_penalty, D, x, every=16) is None
    # with return_scores the penalty is scaled, the scores are not
    penalty, scores = lazy.penalty(r1_penalty, D, x, every=16, gamma=10.0, return_scores=True)
    assert torch.allclose(penalty, 16 * r1_penalty(D, x, gamma=10.0))
    assert torch.allclose(scores, D(x))
