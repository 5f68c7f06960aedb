"""The landscapes world: deterministic, any size, cached atomically, >= 9 classes, instance
maps agree with the semantic map, the renderer paints any map and the style never moves it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import ganlab.data.landscapes.dataset as ds
from ganlab.data.landscapes import (
    CLASS_INDEX,
    CLASSES,
    THINGS,
    LandscapesWorld,
    Style,
    colorize,
    load_landscapes,
    one_hot,
    render,
)
from ganlab.data.landscapes.render import class_colors


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path))


def test_scenes_are_deterministic_independent_of_order_and_seeded():
    a = [LandscapesWorld("train").scene(i, 32) for i in (7, 2, 5)]
    b = [LandscapesWorld("train").scene(i, 32) for i in (5, 2, 7)][::-1]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.labels, y.labels)
        assert np.array_equal(x.instances, y.instances) and x.style == y.style
    other_seed = LandscapesWorld("train", seed=1).scene(7, 32)
    other_split = LandscapesWorld("test").scene(7, 32)
    assert not np.array_equal(a[0].labels, other_seed.labels)
    assert not np.array_equal(a[0].labels, other_split.labels)


def test_sizes_dtypes_and_one_scene_at_every_size():
    world = LandscapesWorld("test")
    fractions = {}
    for size in (16, 64, 256):
        s = world.scene(3, size)
        assert s.image.shape == (size, size, 3) and s.image.dtype == np.uint8
        assert s.labels.shape == (size, size) and s.labels.dtype == np.uint8
        assert s.instances.shape == (size, size) and s.image.std() > 10
        fractions[size] = np.bincount(s.labels.ravel(), minlength=len(CLASSES)) / size**2
    # the layout is continuous: the same scene at 64 and 256 px covers the same areas
    assert np.abs(fractions[64] - fractions[256]).max() < 0.02, fractions
    for bad in (8, 300, 64.0):
        with pytest.raises(ValueError, match="between 16 and 256"):
            world.scene(0, bad)


def test_load_matches_the_world_and_reads_back_from_the_cache(tmp_path):
    data = load_landscapes(6, "train", 32, progress=False)
    assert data.images.shape == (6, 3, 32, 32) and data.labels.shape == (6, 32, 32)
    assert data.styles.shape == (6, 2) and len(data) == 6
    files = list((tmp_path / "landscapes").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    scene = LandscapesWorld("train").scene(4, 32)
    assert np.array_equal(data.images[4].permute(1, 2, 0).numpy(), scene.image)
    assert np.array_equal(data.labels[4].numpy(), scene.labels)
    assert data.styles[4].tolist() == list(scene.style.codes())
    cached = load_landscapes(6, "train", 32, progress=False)
    assert torch.equal(cached.images, data.images) and torch.equal(cached.labels, data.labels)
    item = data[4]
    assert item["image"].dtype == torch.float32 and item["image"].abs().max() <= 1
    assert data.one_hot(slice(0, 2)).shape == (2, len(CLASSES), 32, 32)
    assert torch.equal(data.one_hot(slice(0, 2)).argmax(1), data.labels[:2].long())


def test_cache_writes_are_atomic_and_a_damaged_file_is_redrawn(tmp_path, monkeypatch):
    path = ds._cache_path("test", 3, 16, 0)

    def crash(file, **arrays):  # a crash half-way through writing the temporary file
        with open(file, "wb") as f:
            f.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(ds.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        load_landscapes(3, "test", 16, progress=False)
    assert not path.exists()  # the final name never holds half a file
    assert not list(path.parent.iterdir())  # and the temporary file is cleaned up
    monkeypatch.undo()
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path))
    path.write_bytes(b"not an npz file")  # a damaged cache (e.g. from an older crash)
    data = load_landscapes(3, "test", 16, progress=False)
    assert np.array_equal(data.labels[1].numpy(), LandscapesWorld("test").scene(1, 16).labels)
    with np.load(path) as f:
        assert np.array_equal(f["labels"], data.labels.numpy())  # rewritten, readable


def test_at_least_nine_classes_occur_and_every_class_somewhere():
    world = LandscapesWorld("train")
    seen = np.zeros(len(CLASSES), int)
    per_scene = []
    for i in range(60):
        labels = world.scene(i, 32).labels
        present = np.bincount(labels.ravel(), minlength=len(CLASSES)) > 0
        seen += present
        per_scene.append(present.sum())
    assert (seen > 0).sum() >= 9 and (seen > 0).all(), dict(zip(CLASSES, seen, strict=True))
    assert np.mean(per_scene) >= 5  # a typical scene holds several classes


def test_instance_maps_agree_with_the_semantic_map():
    world = LandscapesWorld("train")
    things = [CLASS_INDEX[t] for t in THINGS]
    counted = 0
    for i in range(30):
        s = world.scene(i, 64)
        inst, lab = s.instances.astype(int), s.labels
        assert np.array_equal(inst > 0, np.isin(lab, things))  # things, and only things
        for k in np.unique(inst[inst > 0]):
            classes = np.unique(lab[inst == k])
            assert len(classes) == 1, (i, k, classes)  # one instance, one class
            counted += 1
        assert inst.max() <= len(s.layout.things)
    assert counted > 60


def test_style_changes_the_image_but_never_the_map():
    world = LandscapesWorld("train")
    for i in range(3):
        a = world.scene(i, 48, Style("noon", "summer"))
        b = world.scene(i, 48, Style("evening", "autumn", (0.03, 0.0, -0.03), seed=5))
        assert np.array_equal(a.labels, b.labels) and np.array_equal(a.instances, b.instances)
        assert np.abs(a.image.astype(int) - b.image.astype(int)).mean() > 15
    with pytest.raises(ValueError, match="time of day"):
        Style("midnight")
    with pytest.raises(ValueError, match="season"):
        Style("noon", "monsoon")


def test_the_renderer_paints_a_hand_made_map():
    labels = np.full((64, 64), CLASS_INDEX["grass"], np.int64)
    labels[:20] = CLASS_INDEX["sky"]
    labels[36:52, 8:40] = CLASS_INDEX["water"]  # a painted pond
    image = render(labels, Style("noon", "summer")).astype(float)
    assert np.array_equal(image, render(labels, Style("noon", "summer")))  # deterministic
    pond, grass = image[labels == 4].mean(0), image[labels == 6].mean(0)
    assert pond[2] > pond[0] + 40 and pond[2] > pond[1]  # blue where the map says water
    assert grass[1] > grass[0] + 40 and grass[1] > grass[2] + 40  # green where it says grass
    # the pond's colour is the class colour of water (textured around it), not grass's
    want = class_colors(Style())[CLASS_INDEX["water"]] * 255
    assert np.abs(pond - want).max() < 60, (pond, want)
    # a painted map with every class renders too; ids outside 0..9 are refused
    every = np.repeat(np.arange(10), 7)[:64][None].repeat(64, 0)
    assert render(every).shape == (64, 64, 3)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        render(np.full((32, 32), 10))
    with pytest.raises(ValueError, match="square"):
        render(np.zeros((32, 48), int))
    assert colorize(labels).shape == (64, 64, 3)
    assert one_hot(torch.from_numpy(labels)[None]).shape == (1, 10, 64, 64)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="unknown landscapes split"):
        load_landscapes(4, "validation")
    with pytest.raises(ValueError, match="positive int"):
        load_landscapes(0)
    with pytest.raises(ValueError, match="index must be >= 0"):
        LandscapesWorld().scene(-1)


def test_world_command_and_figures(tmp_path):
    from ganlab.cli import main

    out = tmp_path / "landscapes.png"
    assert main(["world", "landscapes", "--n", "2", "--size", "32", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    out = tmp_path / "styles.png"
    assert main(["world", "landscapes", "--styles", "--size", "32", "--out", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert main(["world", "landscapes", "--split", "zeroshot", "--out", str(out)]) == 2


def test_pix2pix_baseline_trains_and_round_trips(tmp_path):
    from ganlab.experiments.landscapes_pix2pix import condition, load_generator, train

    report = train(str(tmp_path / "run"), size=32, batch=2, n_train=4, max_steps=1, log_every=1)
    assert report["steps"] == 1 and len(report["history"]) == 1
    G = load_generator(tmp_path / "run" / "generator.safetensors")
    data = load_landscapes(4, "train", 32, progress=False)
    out = G(condition(data.labels.long(), data.styles))
    assert out.shape == (4, 3, 32, 32) and out.abs().max() <= 1
