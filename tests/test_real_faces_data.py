"""Real-data loaders for FFHQ / CelebA-HQ (a folder of images) and AFHQ (split/domain folders).

The fixtures are tiny trees of PNG / JPG files written here with PIL; expected pixels come
from PIL applied directly to the written arrays, never from the loader.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ganlab.data.afhq import AFHQ
from ganlab.data.ffhq import FaceFolder, list_images
from ganlab.errors import DataNotFoundError


def write_image(path, seed: int, size=(12, 12), mode="RGB"):
    """A random image of ``size`` (w, h), saved by its suffix; returns the pixels written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    pixels = rng.integers(0, 256, size=(size[1], size[0], channels), dtype=np.uint8)
    img = Image.fromarray(pixels[..., 0] if mode == "L" else pixels, mode)
    img.save(path, quality=100, subsampling=0) if path.suffix == ".jpg" else img.save(path)
    return pixels


def expected(path, size):
    """PIL by hand: RGB, centre square crop, Lanczos resize, to [-1, 1] (3, size, size)."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    s = min(w, h)
    img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
    img = img.resize((size, size), Image.Resampling.LANCZOS) if s != size else img
    return torch.from_numpy(np.array(img)).permute(2, 0, 1).float() / 127.5 - 1


@pytest.fixture
def ffhq(tmp_path):
    """FFHQ's layout: images1024x1024/<thousands>/<index>.png, a LICENSE.txt, a hidden file."""
    root = tmp_path / "images1024x1024"
    for i, index in enumerate([0, 1, 1000]):
        write_image(root / f"{index // 1000 * 1000:05d}" / f"{index:05d}.png", seed=i)
    (root / "LICENSE.txt").write_text("Creative Commons BY-NC-SA 4.0\n")
    (root / "00000" / ".DS_Store").write_bytes(b"\x00\x01")
    return root


@pytest.fixture
def afhq(tmp_path):
    """StarGAN v2's layout: train|val/cat|dog|wild/*.jpg (2 train and 1 val image per domain)."""
    root = tmp_path / "afhq"
    seed = 0
    for split, count in (("train", 2), ("val", 1)):
        for domain in ("cat", "dog", "wild"):
            for k in range(count):
                write_image(root / split / domain / f"flickr_{domain}_{k:06d}.jpg", seed=seed)
                seed += 1
    return root


# ------------------------------------------------------------------ FFHQ / CelebA-HQ folders


def test_face_folder_lists_recursively_in_path_order_and_skips_non_images(ffhq):
    data = FaceFolder(ffhq, size=8)
    assert len(data) == 3
    assert [data[i]["name"] for i in range(3)] == ["00000/00000", "00000/00001", "01000/01000"]
    assert [p.name for p in data.skipped] == ["LICENSE.txt"]  # noted; .DS_Store is hidden
    assert "skipped 1 non-image files" in repr(data)
    for i in range(3):
        item = data[i]
        assert item["image"].shape == (3, 8, 8) and item["image"].dtype == torch.float32
        torch.testing.assert_close(item["image"], expected(data.paths[i], 8))
    assert torch.equal(data[-1]["image"], data[2]["image"])
    with pytest.raises(IndexError):
        data[3]
    assert len(FaceFolder(ffhq, size=8, max_images=2)) == 2
    batch = next(iter(DataLoader(data, batch_size=3)))  # the default collate works
    assert batch["image"].shape == (3, 3, 8, 8) and batch["name"][2] == "01000/01000"


def test_native_size_is_exact_and_other_modes_become_rgb(tmp_path):
    root = tmp_path / "celeba_hq"
    pixels = write_image(root / "0.png", seed=1)  # 12 x 12, loaded at size 12: no resampling
    write_image(root / "1.jpg", seed=2, mode="L")
    write_image(root / "2.png", seed=3, mode="RGBA")
    write_image(root / "3.PNG", seed=4, size=(20, 12))  # upper-case suffix, not square
    data = FaceFolder(root, size=12)
    assert [data[i]["name"] for i in range(4)] == ["0", "1", "2", "3"]
    got = data[0]["image"].add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, pixels)
    for i in (1, 2):
        assert data[i]["image"].shape == (3, 12, 12)
    # the 20 x 12 image is centre-cropped to columns 4..16, then left at 12 px
    wide = np.array(Image.open(root / "3.PNG"))
    want = torch.from_numpy(wide[:, 4:16]).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(data[3]["image"], want)


def test_face_folder_errors_show_the_expected_tree(tmp_path):
    with pytest.raises(DataNotFoundError, match=r"(?s)not found.*expected layout.*00000\.png"):
        FaceFolder(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    (empty / "00000").mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match=r"(?s)no \.png / \.jpg.*expected layout"):
        FaceFolder(empty)
    (empty / "notes.txt").write_text("not a face")
    with pytest.raises(DataNotFoundError, match="only non-image files: notes.txt"):
        FaceFolder(empty)
    with pytest.raises(ValueError, match="size must be a positive int"):
        FaceFolder(empty, size=0)


def test_corrupt_and_truncated_images_are_named(ffhq):
    bad = ffhq / "00000" / "00002.png"
    bad.write_bytes(b"this is not a png")
    good = ffhq / "00000" / "00001.png"
    truncated = ffhq / "01000" / "01001.png"
    truncated.write_bytes(good.read_bytes()[:60])
    data = FaceFolder(ffhq, size=8)  # listing does not open files
    names = [data[i]["name"] for i in range(2)]
    assert names == ["00000/00000", "00000/00001"]
    with pytest.raises(DataNotFoundError, match=r"00000/00002\.png is not a readable image"):
        data[2]
    with pytest.raises(DataNotFoundError, match=r"01001\.png is not a readable image"):
        data[4]
    assert sorted(p.name for p, _ in data.verify()) == ["00002.png", "01001.png"]


def test_list_images_ignores_hidden_folders(tmp_path):
    write_image(tmp_path / "a" / "x.png", seed=0)
    write_image(tmp_path / ".thumbs" / "y.png", seed=1)
    images, skipped = list_images(tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in images] == ["a/x.png"] and not skipped


# ------------------------------------------------------------------ AFHQ


def test_afhq_train_and_val_labels_names_and_pixels(afhq):
    train, val = AFHQ(afhq, "train", size=8), AFHQ(afhq, "val", size=8)
    assert (len(train), len(val)) == (6, 3)
    items = [train[i] for i in range(6)]
    assert [it["label"] for it in items] == [0, 0, 1, 1, 2, 2] == train.labels()
    assert [it["domain"] for it in items] == ["cat", "cat", "dog", "dog", "wild", "wild"]
    assert items[3]["name"] == "dog/flickr_dog_000001"
    for i, it in enumerate(items):
        torch.testing.assert_close(it["image"], expected(train.items[i][0], 8))
    assert [val[i]["name"] for i in range(3)] == [
        "cat/flickr_cat_000000",
        "dog/flickr_dog_000000",
        "wild/flickr_wild_000000",
    ]
    assert "cat=2, dog=2, wild=2" in repr(train)
    batch = next(iter(DataLoader(train, batch_size=6)))
    assert batch["label"].tolist() == [0, 0, 1, 1, 2, 2]


def test_afhq_other_domains_read_stargan_v2_celeba_hq(tmp_path):
    root = tmp_path / "celeba_hq"
    for split in ("train", "val"):
        for k, domain in enumerate(("female", "male")):
            write_image(root / split / domain / f"{k:06d}.jpg", seed=k)
    data = AFHQ(root, "val", size=8, domains=("female", "male"))
    assert [data[i]["domain"] for i in range(2)] == ["female", "male"]
    with pytest.raises(DataNotFoundError, match="missing: cat, dog, wild; unexpected: female"):
        AFHQ(root, "train")


def test_afhq_wrong_layouts_name_the_problem_and_show_the_tree(tmp_path, afhq):
    tree = r"(?s)expected layout:.*train/.*cat/.*dog/.*wild/.*val/"
    with pytest.raises(DataNotFoundError, match=r"(?s)AFHQ folder not found.*" + tree[4:]):
        AFHQ(tmp_path / "nowhere")
    with pytest.raises(DataNotFoundError, match=r"(?s)root looks like a split folder.*" + tree[4:]):
        AFHQ(afhq / "train")  # one level too deep
    flat = tmp_path / "flat"
    write_image(flat / "cat_1.png", seed=0)  # a flat folder of images: not this layout
    with pytest.raises(DataNotFoundError, match=r"(?s)no train/ folder in root.*" + tree[4:]):
        AFHQ(flat)
    (afhq / "train" / "horse").mkdir()
    with pytest.raises(DataNotFoundError, match="missing: -; unexpected: horse"):
        AFHQ(afhq, "train")
    (afhq / "train" / "horse").rmdir()
    for f in (afhq / "val" / "wild").iterdir():
        f.unlink()
    (afhq / "val" / "wild" / "README").write_text("the wild images go here")
    with pytest.raises(DataNotFoundError, match=r"val/wild/ holds no \.png"):
        AFHQ(afhq, "val")
    with pytest.raises(ValueError, match="split must be one of"):
        AFHQ(afhq, "test")
    with pytest.raises(ValueError, match="distinct"):
        AFHQ(afhq, domains=("cat", "cat"))


def test_afhq_corrupt_image_named_and_non_image_skipped(afhq):
    (afhq / "train" / "dog" / "flickr_dog_000000.jpg").write_bytes(b"\xff\xd8 broken jpeg")
    (afhq / "train" / "cat" / "Thumbs.db").write_bytes(b"\x00")
    data = AFHQ(afhq, "train", size=8)
    assert [p.name for p in data.skipped] == ["Thumbs.db"] and len(data) == 6
    with pytest.raises(DataNotFoundError, match=r"dog/flickr_dog_000000\.jpg is not a readable"):
        data[2]
    assert [p.name for p, _ in data.verify()] == ["flickr_dog_000000.jpg"]
