"""The faces world: deterministic, any size, cached atomically, and its factors and part masks
agree with its pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab.data.faces import (
    CATEGORIES,
    DOMAINS,
    KIND_DOMAIN,
    LEVELS,
    PARTS,
    RANGES,
    FacesWorld,
    load_faces,
    render_face,
)
from ganlab.data.faces.dataset import _cache_path
from ganlab.data.faces.factors import TEMPLATES, encode

P = {name: i for i, name in enumerate(PARTS)}


def _centroid(mask: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    return np.array([xs.mean(), ys.mean()])


def test_factors_cover_the_three_levels_and_every_template_is_valid():
    assert set(LEVELS) == {"coarse", "middle", "fine"}
    named = [f for level in LEVELS.values() for f in level]
    assert len(named) == len(set(named)) and set(named) <= set(CATEGORIES) | set(RANGES)
    assert set(KIND_DOMAIN.values()) == set(DOMAINS)
    assert sum(d == "wild" for d in KIND_DOMAIN.values()) >= 3  # a domain is not one template
    for kind, t in TEMPLATES.items():
        for name, options in t.items():
            if name in CATEGORIES:
                assert set(options) <= set(CATEGORIES[name]), (kind, name)


def test_faces_are_deterministic_and_independent_of_order():
    world = FacesWorld("train")
    a = [world.image(i, 32) for i in (7, 2, 11)]
    b = [FacesWorld("train").image(i, 32) for i in (11, 2, 7)][::-1]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert world.face(7) == FacesWorld("train").face(7)
    assert not np.array_equal(world.image(7, 32), FacesWorld("train", seed=1).image(7, 32))
    assert not np.array_equal(world.image(7, 32), FacesWorld("test").image(7, 32))
    with pytest.raises(ValueError, match="split"):
        FacesWorld("validation")
    with pytest.raises(ValueError, match="domain"):
        FacesWorld("train", domain="bird")


def test_any_size_from_8_to_256():
    face = FacesWorld("test").face(1)
    for size in (8, 13, 32, 64, 100, 256):
        img, mask = render_face(face, size, masks=True)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
        assert mask.shape == (size, size) and mask.max() < len(PARTS)
        assert img.std() > 10 and (mask == P["face"]).any()
    for bad in (7, 257, 64.0):
        with pytest.raises(ValueError, match="between 8 and 256"):
            render_face(face, bad)


def test_load_faces_caches_atomically_and_redraws_a_damaged_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path))
    data = load_faces(10, "test", 24, progress=False)
    path = _cache_path("test", 10, 24, 0, None)
    assert path.is_file() and not list(path.parent.glob("*.tmp*"))  # renamed into place
    cached = load_faces(10, "test", 24, progress=False)
    assert torch.equal(data.images, cached.images) and torch.equal(data.masks, cached.masks)
    img, mask = FacesWorld("test").image_and_mask(9, 24)
    assert np.array_equal(data.images[9].permute(1, 2, 0).numpy(), img)
    assert np.array_equal(data.masks[9].numpy(), mask)
    codes, values = encode(FacesWorld("test").face(9))
    assert np.array_equal(data.codes[9].numpy(), codes)
    path.write_bytes(b"half a file")  # a crash mid-write would look like this
    again = load_faces(10, "test", 24, progress=False)
    assert torch.equal(again.images, data.images)


def test_splits_and_per_domain_reference_sets():
    for domain in DOMAINS:
        ref = FacesWorld("reference", domain=domain)
        faces = [ref.face(i) for i in range(12)]
        assert {f.domain for f in faces} == {domain}
    wild = {FacesWorld("reference", domain="wild").face(i).kind for i in range(40)}
    assert len(wild) >= 3
    train = {FacesWorld("train").image(i, 16).tobytes() for i in range(20)}
    ref = {FacesWorld("reference", domain="cat").image(i, 16).tobytes() for i in range(20)}
    assert not train & ref
    mixed = [FacesWorld("train").face(i).domain for i in range(90)]
    assert all(15 < mixed.count(d) < 45 for d in DOMAINS)  # uniform over domains


def test_domain_templates_differ_in_the_pixels():
    means = {}
    for d in DOMAINS:
        data = load_faces(40, "test", 32, domain=d, cache=False, progress=False)
        ears = (data.masks == P["ears"]).float().mean(0)
        means[d] = ears
    # cats' ears stand up, most dogs' ears hang beside the head: the ear maps differ
    top = slice(0, 12)
    assert means["cat"][top].sum() > 2 * means["dog"][top].sum()
    assert means["dog"][12:].sum() > 2 * means["cat"][12:].sum()


def test_eye_pixels_have_the_eye_colour_and_background_pixels_the_background():
    world = FacesWorld("test")
    for i in range(6):
        face = world.face(i).replace(eye_open=1.0, eye_size=1.3, yaw=0.0)
        img, mask = render_face(face, 128, masks=True)
        eye = img[mask == P["eyes"]].astype(int)
        near = np.abs(eye - np.array(face.rgb["eye_color"])).max(1) <= 3
        assert near.mean() > 0.3, (i, face["eye_color"], near.mean())
        # far from the face, the background is the exact gradient of its named colours
        bg = img[:4, :4].reshape(-1, 3).astype(int)
        assert (mask[:4, :4] == P["background"]).all()
        assert np.abs(bg - np.array(face.rgb["bg_top"])).max() <= 3


def test_changing_a_fine_factor_changes_only_its_part():
    face = FacesWorld("test").face(4)
    img, mask = render_face(face, 64, masks=True)
    other = next(c for c in CATEGORIES["eye_color"] if c != face["eye_color"])
    img2, mask2 = render_face(face.replace(eye_color=other), 64, masks=True)
    assert np.array_equal(mask, mask2)
    changed = np.abs(img2.astype(int) - img).max(-1) > 8
    assert changed.any() and (mask[changed] == P["eyes"]).mean() > 0.95
    bg = next(c for c in CATEGORIES["background"] if c != face["background"])
    img3 = render_face(face.replace(background=bg), 64)
    changed = np.abs(img3.astype(int) - img).max(-1) > 8
    assert (mask[changed] == P["background"]).mean() > 0.9


def test_pose_moves_the_features_as_the_factors_say():
    face = FacesWorld("test", domain="dog").face(2).replace(roll=0.0, pitch=0.0, muzzle=0.8)
    offsets = []
    for yaw in (RANGES["yaw"][0], 0.0, RANGES["yaw"][1]):
        _, mask = render_face(face.replace(yaw=yaw), 64, masks=True)
        head = _centroid(np.isin(mask, [P["face"], P["markings"], P["muzzle"], P["eyes"]]))
        offsets.append(_centroid(mask == P["muzzle"])[0] - head[0])
    # the snout stands in front of the face, so it swings with yaw: centred when yaw = 0
    assert offsets[0] < -2.5 and abs(offsets[1]) < 1 and offsets[2] > 2.5
    _, up = render_face(face.replace(pitch=RANGES["pitch"][1]), 64, masks=True)
    _, down = render_face(face.replace(pitch=RANGES["pitch"][0]), 64, masks=True)
    assert _centroid(up == P["muzzle"])[1] < _centroid(down == P["muzzle"])[1] - 2
    lo, hi = RANGES["cx"]
    _, left = render_face(face.replace(cx=lo), 64, masks=True)
    _, right = render_face(face.replace(cx=hi), 64, masks=True)
    shift = _centroid(right == P["face"])[0] - _centroid(left == P["face"])[0]
    assert abs(shift - (hi - lo) * 64) < 1.0


def test_markings_and_mouth_masks_follow_their_factors():
    face = FacesWorld("test", domain="cat").face(1).replace(yaw=0.0, roll=0.0)
    areas = {}
    for marking in CATEGORIES["marking"]:
        _, mask = render_face(face.replace(marking=marking), 64, masks=True)
        areas[marking] = int((mask == P["markings"]).sum())
    assert areas["none"] == 0 and all(areas[m] > 10 for m in areas if m != "none")
    mouth = {m: int((render_face(face.replace(mouth=m), 64, masks=True)[1] == P["mouth"]).sum())
             for m in CATEGORIES["mouth"]}  # fmt: skip
    assert 0 < mouth["closed"] < mouth["open"]
    eyes = [int((render_face(face.replace(eye_open=v), 64, masks=True)[1] == P["eyes"]).sum())
            for v in RANGES["eye_open"]]  # fmt: skip
    assert eyes[0] < 0.8 * eyes[1]


def test_factor_sweep_changes_only_the_swept_factor():
    from ganlab.viz.faces import factor_sweep, sweep_values

    face = FacesWorld("test").face(0)
    images = factor_sweep(face, "eye_color", size=32)
    assert images.shape == (len(CATEGORIES["eye_color"]), 3, 32, 32)
    assert len({im.numpy().tobytes() for im in images}) == len(images)  # every value shows
    assert sweep_values("yaw", 3) == [RANGES["yaw"][0], 0.0, RANGES["yaw"][1]]
    with pytest.raises(ValueError, match="unknown factor"):
        sweep_values("tail")


def test_ganlab_world_faces_writes_a_grid_and_sweeps(tmp_path, monkeypatch):
    from PIL import Image

    from ganlab.cli import main

    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path))
    png = tmp_path / "faces.png"
    args = ["world", "faces", "--domain", "wild", "--n", "4", "--size", "32", "--out", str(png)]
    assert main([*args, "--masks"]) == 0
    assert Image.open(png).size[0] > 200
    sweep = tmp_path / "sweep.png"
    assert (
        main(["world", "faces", "--sweep", "yaw", "base", "--size", "32", "--out", str(sweep)]) == 0
    )
    assert sweep.is_file()
    assert main(["world", "faces", "--sweep", "tail", "--out", str(sweep)]) == 2


def test_spots_stay_off_the_eyes_and_the_muzzle():
    """At 32 px a dark spot beside an eye reads as a third eye: spots keep clear of both."""
    from ganlab.data.faces.render import EYE_X, EYE_Y

    world = FacesWorld("test", domain="cat")
    for i in range(8):
        face = world.face(i).replace(marking="spots", yaw=0.0, pitch=0.0, roll=0.0)
        _, mask = render_face(face, 64, masks=True)
        unit = face["scale"] * 64
        ys, xs = np.nonzero(mask == P["markings"])
        assert len(xs), i
        hx = (xs + 0.5 - face["cx"] * 64) / unit  # head frame, head radii
        hy = (face["cy"] * 64 - ys - 0.5) / unit
        to_eye = np.minimum(np.hypot(hx - EYE_X, hy - EYE_Y), np.hypot(hx + EYE_X, hy - EYE_Y))
        assert to_eye.min() > 0.3 - 1.0 / unit, (i, to_eye.min())


def test_eyes_and_mouth_are_visible_at_32_px():
    """The learnability GAN works at 32 px: every face must show both eyes there, and an open
    mouth (a closed one is a line thinner than a pixel, darkening pixels it does not own)."""
    data = load_faces(60, "test", 32, cache=False, progress=False)
    closed = CATEGORIES["mouth"].index("closed")
    for i in range(60):
        mask = data.masks[i].numpy()
        eyes = mask == P["eyes"]
        cx = int(round(data.factor("cx")[i].item() * 32))
        assert eyes[:, :cx].sum() >= 4 and eyes[:, cx:].sum() >= 4, i
        if data.factor("mouth")[i] != closed:
            assert (mask == P["mouth"]).sum() >= 2, i
