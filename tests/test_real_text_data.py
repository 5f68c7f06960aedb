"""Real-data loaders for CUB-200-2011 and Oxford-102 with captions, on tiny fake datasets.

Expected values come from the fixture files read back here by hand, from crop boxes
computed by hand, and from PIL applied directly; never from the loader itself.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ganlab.data.cub import CUBBirds, collate, enlarged_box, find_cub
from ganlab.data.oxford102 import Oxford102Flowers, find_oxford102
from ganlab.data.text_fixtures import make_cub_fixture, make_oxford102_fixture
from ganlab.errors import DataNotFoundError


@pytest.fixture
def cub(tmp_path):
    return make_cub_fixture(tmp_path / "birds")  # 4 classes x 3 images


@pytest.fixture
def flowers(tmp_path):
    return make_oxford102_fixture(tmp_path / "flowers")  # 3 classes x 4 images


def _rows(path):
    return [line.split() for line in path.read_text().splitlines() if line.strip()]


def _as_uint8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8, exact for images that came from uint8."""
    return image.add(1).mul(127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()


# ---------------------------------------------------------------- CUB


def test_cub_official_split_counts_shapes_labels_and_captions(cub):
    c = cub / "CUB_200_2011"
    flags = {int(i): int(f) for i, f in _rows(c / "train_test_split.txt")}
    paths = {int(i): p for i, p in _rows(c / "images.txt")}
    train, test = CUBBirds(cub, "train"), CUBBirds(cub, "test")
    assert (len(train), len(test), len(CUBBirds(cub, "all"))) == (8, 4, 12)
    want_train = [paths[i][:-4] for i in sorted(paths) if flags[i] == 1]
    assert [train[k]["name"] for k in range(len(train))] == want_train  # images.txt order
    for data in (train, test):
        for k in range(len(data)):
            item = data[k]
            assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
            assert -1 <= item["image"].min() < item["image"].max() <= 1
            assert item["label"] == int(item["name"][:3]) - 1  # "004.Groove..." -> 3
            lines = (cub / "text_c10" / f"{item['name']}.txt").read_text().splitlines()
            assert item["captions"] == lines and len(lines) == 10
            assert all(
                cap.endswith(f"caption {j} of {item['name']}") for j, cap in enumerate(lines)
            )
    assert {train[k]["name"] for k in range(8)}.isdisjoint(test[k]["name"] for k in range(4))
    assert torch.equal(CUBBirds(cub, "train")[3]["image"], train[3]["image"])  # deterministic
    assert torch.equal(train[-1]["image"], train[7]["image"])
    with pytest.raises(IndexError):
        train[8]


def test_find_cub_accepts_the_parent_or_the_folder_and_attngan_text_dir(tmp_path, cub):
    assert find_cub(cub) == find_cub(cub / "CUB_200_2011") == cub / "CUB_200_2011"
    assert len(CUBBirds(cub / "CUB_200_2011", "test")) == 4  # captions found beside it
    attn = make_cub_fixture(tmp_path / "attn", captions_dir="text")  # AttnGAN's birds/text/
    assert CUBBirds(attn, "train").captions_dir == attn / "text"
    moved = tmp_path / "elsewhere"
    (cub / "text_c10").rename(moved)
    item = CUBBirds(cub, "train", captions_dir=moved)[0]
    assert item["captions"][0].endswith(f"caption 0 of {item['name']}")


def test_cub_zero_shot_class_split_from_reed_files(cub):
    train = CUBBirds(cub, "train", split_by="classes", size=16)
    test = CUBBirds(cub, "test", split_by="classes", size=16)
    assert (len(train), len(test)) == (9, 3)  # 3 of 4 classes train, as 150 of 200
    assert {train[k]["label"] for k in range(9)} == {0, 1, 2}
    assert {test[k]["label"] for k in range(3)} == {3}


def test_cub_class_split_from_a_user_file(tmp_path):
    root = make_cub_fixture(tmp_path / "b", zero_shot_files=False)
    with pytest.raises(DataNotFoundError, match="trainvalclasses.txt"):
        CUBBirds(root, "train", split_by="classes")
    mine = tmp_path / "my_train_classes.txt"
    mine.write_text("002.Laysan_Albatross\n\n4\n")  # a folder name and a bare class number
    train = CUBBirds(root, "train", split_by="classes", classes_file=mine, size=8)
    test = CUBBirds(root, "test", split_by="classes", classes_file=mine, size=8)
    assert sorted({train[k]["label"] for k in range(len(train))}) == [1, 3]
    assert sorted({test[k]["label"] for k in range(len(test))}) == [0, 2]
    mine.write_text("002.Laysan_Albatross\n999.Dodo\n")
    with pytest.raises(DataNotFoundError, match=r"my_train_classes.txt, line 2: .*999.Dodo"):
        CUBBirds(root, "train", split_by="classes", classes_file=mine)


def test_enlarged_box_by_hand():
    # bbox (30.7, 20.2, 20.9, 16.5) -> ints (30, 20, 20, 16); r = int(0.75 * 20) = 15;
    # centre (int(80 / 2), int(56 / 2)) = (40, 28) -> square [25, 55) x [13, 43)
    assert enlarged_box((30.7, 20.2, 20.9, 16.5), 100, 80) == (25, 13, 55, 43)
    # (2, 60, 30, 14): r = 22, centre (17, 67) -> (-5, 45, 39, 89) clipped to (0, 45, 39, 80)
    assert enlarged_box((2, 60, 30, 14), 100, 80) == (0, 45, 39, 80)
    # (88, 2, 12, 10): r = 9, centre (94, 7) -> (85, -2, 103, 16) clipped to (85, 0, 100, 16)
    assert enlarged_box((88, 2, 12, 10), 100, 80) == (85, 0, 100, 16)


def _replace_first_image(cub, pixels: np.ndarray, bbox: str):
    """Put ``pixels`` as image id 1 and give it the bounding-box line ``bbox``."""
    c = cub / "CUB_200_2011"
    path = c / "images" / _rows(c / "images.txt")[0][1]
    Image.fromarray(pixels).save(path, quality=100, subsampling=0)  # 4:4:4
    lines = (c / "bounding_boxes.txt").read_text().splitlines()
    (c / "bounding_boxes.txt").write_text("\n".join([f"1 {bbox}"] + lines[1:]) + "\n")
    return path


def test_bbox_crop_keeps_exactly_the_enlarged_box(cub):
    # black photo; only the enlarged box [25, 55) x [13, 43) (computed by hand above) is
    # coloured, with a gradient so that any other crop of it would differ
    pixels = np.zeros((80, 100, 3), np.uint8)  # (H, W, 3)
    yy, xx = np.mgrid[13:43, 25:55]
    pixels[13:43, 25:55, 0] = 100 + 4 * (xx - 25)
    pixels[13:43, 25:55, 1] = 100 + 4 * (yy - 13)
    pixels[13:43, 25:55, 2] = 200
    path = _replace_first_image(cub, pixels, "30.7 20.2 20.9 16.5")
    decoded = np.asarray(Image.open(path).convert("RGB"))
    item = CUBBirds(cub, "train", size=30)[0]  # 30 = the crop's side: no resampling
    got = _as_uint8(item["image"])
    assert np.array_equal(got, decoded[13:43, 25:55])
    assert got[..., 2].min() > 150  # no black border: nothing outside the box came in
    # without crop: the whole photo, resized
    whole = CUBBirds(cub, "train", size=30, crop=False)[0]["image"]
    want = np.asarray(Image.open(path).convert("RGB").resize((30, 30), Image.BILINEAR))
    assert np.array_equal(_as_uint8(whole), want)


def test_bbox_crop_clipped_at_the_border_is_resized(cub):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (80, 100, 3)).astype(np.uint8)
    path = _replace_first_image(cub, pixels, "2.0 60.0 30.0 14.0")
    got = CUBBirds(cub, "train", size=16)[0]["image"]
    want = Image.open(path).convert("RGB").crop((0, 45, 39, 80)).resize((16, 16), Image.BILINEAR)
    assert np.array_equal(_as_uint8(got), np.asarray(want))


def test_cub_missing_root_and_captions_show_the_layout(tmp_path, cub):
    with pytest.raises(DataNotFoundError) as info:
        CUBBirds(tmp_path / "nowhere")
    message = str(info.value)
    assert str(tmp_path / "nowhere") in message and "CUB_200_2011/" in message
    assert "images.txt" in message and "text_c10" in message
    (cub / "text_c10").rename(tmp_path / "hidden")
    with pytest.raises(DataNotFoundError, match=r"(?s)no caption folder.*text_c10"):
        CUBBirds(cub)
    with pytest.raises(DataNotFoundError, match="captions_dir is not a folder"):
        CUBBirds(cub, captions_dir=tmp_path / "nope")


@pytest.mark.parametrize(
    "filename, edit, match",
    [
        (
            "images.txt",
            lambda rows: rows[:1] + [rows[1] + " extra"] + rows[2:],
            r"images.txt, line 2: expected 2 columns, got 3",
        ),
        (
            "image_class_labels.txt",
            lambda rows: rows[:2] + ["99 1"] + rows[3:],
            r"image_class_labels.txt, line 3: image id 99 is not in images.txt",
        ),
        (
            "image_class_labels.txt",
            lambda rows: ["1 2"] + rows[1:],
            r"image_class_labels.txt, line 1: image 1 has class 2 .*001.Black_footed_Albatross",
        ),
        (
            "bounding_boxes.txt",
            lambda rows: rows[:-1],
            r"bounding_boxes.txt: no line for image ids \[12\]",
        ),
        (
            "bounding_boxes.txt",
            lambda rows: rows[:4] + ["5 1.0 2.0 wide 4.0"] + rows[5:],
            r"bounding_boxes.txt, line 5: expected columns of types",
        ),
        (
            "train_test_split.txt",
            lambda rows: ["1 7"] + rows[1:],
            r"train_test_split.txt, line 1: expected 1 \(train\) or 0 \(test\), got 7",
        ),
    ],
)
def test_cub_malformed_files_name_the_file_and_line(cub, filename, edit, match):
    path = cub / "CUB_200_2011" / filename
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(DataNotFoundError, match=match):
        CUBBirds(cub, "train")


def test_cub_bad_caption_files_are_named(cub):
    data = CUBBirds(cub, "train", size=8)
    caption = cub / "text_c10" / f"{data[1]['name']}.txt"
    caption.write_text("\n\n")
    with pytest.raises(DataNotFoundError, match=f"caption file {caption} is empty"):
        data[1]
    caption.write_text("one\ntwo\n\nthree\n")
    with pytest.raises(DataNotFoundError, match="holds 3 captions, expected 10"):
        data[1]
    assert CUBBirds(cub, "train", size=8, captions_per_image=None)[1]["captions"] == [
        "one",
        "two",
        "three",
    ]
    caption.unlink()
    with pytest.raises(DataNotFoundError, match=f"caption file {caption} not found"):
        data[1]
    (cub / "text_c10" / f"{data[0]['name']}.txt").unlink()  # the first: caught at once
    with pytest.raises(DataNotFoundError, match="caption file .* not found"):
        CUBBirds(cub, "train")


def test_cub_bad_arguments(cub):
    with pytest.raises(ValueError, match="split must be one of"):
        CUBBirds(cub, "val")
    with pytest.raises(ValueError, match="split_by must be one of"):
        CUBBirds(cub, split_by="species")
    with pytest.raises(ValueError, match="size must be a positive int"):
        CUBBirds(cub, size=0)


# ---------------------------------------------------------------- no pickle, batching

EVIL = b"\x80\x04cganlab_no_such_module\nboom\n."  # unpickling it raises


def test_no_pickle_is_ever_read(tmp_path, cub, flowers, monkeypatch):
    with pytest.raises(ModuleNotFoundError):
        pickle.loads(EVIL)  # the planted files really would fail if unpickled
    for base in (cub, flowers):  # AttnGAN's / StackGAN's pickled split lists, planted
        for part in ("train", "test"):
            (base / part).mkdir()
            (base / part / "filenames.pickle").write_bytes(EVIL)
        (base / "captions.pickle").write_bytes(EVIL)

    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)
    for data in (
        CUBBirds(cub, "train", size=8),
        CUBBirds(cub, "test", split_by="classes"),
        Oxford102Flowers(flowers, "val", size=8),
        Oxford102Flowers(flowers, "test", split_by="classes", size=8),
    ):
        for k in range(len(data)):
            data[k]


def test_collate_batches_images_and_keeps_captions_per_image(cub):
    data = CUBBirds(cub, "train", size=16)
    batch = next(iter(DataLoader(data, batch_size=4, collate_fn=collate)))
    assert batch["image"].shape == (4, 3, 16, 16)
    assert batch["label"].dtype == torch.int64 and batch["label"].tolist() == [0, 0, 1, 1]
    assert [len(c) for c in batch["captions"]] == [10] * 4
    assert batch["captions"][2] == data[2]["captions"] and batch["name"][3] == data[3]["name"]


# ---------------------------------------------------------------- Oxford-102


def test_oxford_setid_splits_labels_and_captions(flowers):
    labels = scipy.io.loadmat(flowers / "imagelabels.mat")["labels"][0].astype(int)
    setid = scipy.io.loadmat(flowers / "setid.mat")
    for split, key, n in (("train", "trnid", 3), ("val", "valid", 3), ("test", "tstid", 6)):
        data = Oxford102Flowers(flowers, split, size=32)
        ids = sorted(setid[key][0].astype(int).tolist())
        assert len(data) == n
        assert [data[k]["name"] for k in range(n)] == [f"image_{i:05d}" for i in ids]
        for k, i in enumerate(ids):
            item = data[k]
            assert item["label"] == labels[i - 1] - 1
            assert item["image"].shape == (3, 32, 32) and -1 <= item["image"].min()
            caption = flowers / "text_c10" / f"class_{labels[i - 1]:05d}" / f"image_{i:05d}.txt"
            assert item["captions"] == caption.read_text().splitlines()
            assert item["captions"][9].endswith(f"caption 9 of image_{i:05d}")
    whole = (
        Image.open(flowers / "jpg" / "image_00005.jpg")
        .convert("RGB")
        .resize((32, 32), Image.BILINEAR)
    )
    got = Oxford102Flowers(flowers, "all", size=32)[4]["image"]
    assert np.array_equal(_as_uint8(got), np.asarray(whole))  # no crop for flowers
    assert find_oxford102(flowers / "jpg") == flowers


def test_oxford_class_split_from_reed_files_and_from_a_user_file(tmp_path, flowers):
    train = Oxford102Flowers(flowers, "train", split_by="classes", size=8)
    test = Oxford102Flowers(flowers, "test", split_by="classes", size=8)
    assert (len(train), len(test)) == (8, 4)  # 2 of 3 classes train, as 82 of 102
    assert {train[k]["label"] for k in range(8)} == {0, 1}
    assert {test[k]["label"] for k in range(4)} == {2}
    mine = tmp_path / "mine.txt"
    mine.write_text("class_00003\n")
    train = Oxford102Flowers(flowers, "train", split_by="classes", classes_file=mine, size=8)
    assert len(train) == 4 and {train[k]["label"] for k in range(4)} == {2}
    test = Oxford102Flowers(flowers, "test", split_by="classes", classes_file=mine, size=8)
    assert len(test) == 8 and {test[k]["label"] for k in range(8)} == {0, 1}  # the others
    with pytest.raises(ValueError, match="split must be one of"):
        Oxford102Flowers(flowers, "val", split_by="classes")


def test_oxford_missing_and_malformed_files(tmp_path, flowers):
    with pytest.raises(DataNotFoundError) as info:
        Oxford102Flowers(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(info.value) and "imagelabels.mat" in str(info.value)
    n = 12
    original = scipy.io.loadmat(flowers / "imagelabels.mat")["labels"]
    scipy.io.savemat(
        flowers / "setid.mat",
        {"trnid": np.array([[1, n + 1]]), "valid": np.array([[2]]), "tstid": np.array([[3]])},
    )
    with pytest.raises(
        DataNotFoundError, match=r"setid.mat: 'trnid' must lie in 1..12, got \[13\]"
    ):
        Oxford102Flowers(flowers, "train")
    assert len(Oxford102Flowers(flowers, "val")) == 1
    scipy.io.savemat(flowers / "imagelabels.mat", {"label": np.ones((1, n))})
    with pytest.raises(
        DataNotFoundError, match=r"imagelabels.mat: no key 'labels' \(found \['label'\]\)"
    ):
        Oxford102Flowers(flowers, "all")
    scipy.io.savemat(flowers / "imagelabels.mat", {"labels": np.ones((2, n))})
    with pytest.raises(DataNotFoundError, match=r"must have shape \(1, N\), got \(2, 12\)"):
        Oxford102Flowers(flowers, "all")
    scipy.io.savemat(flowers / "imagelabels.mat", {"labels": np.full((1, n), 103.0)})
    with pytest.raises(DataNotFoundError, match=r"'labels' must lie in 1..102"):
        Oxford102Flowers(flowers, "all")
    scipy.io.savemat(flowers / "imagelabels.mat", {"labels": original})
    (flowers / "text_c10").rename(tmp_path / "hidden")
    with pytest.raises(DataNotFoundError, match=r"(?s)no caption folder text_c10.*expected layout"):
        Oxford102Flowers(flowers, "all")
    data = Oxford102Flowers(
        flowers, "all", captions_dir=tmp_path / "hidden", captions_per_image=None
    )
    (flowers / "jpg" / "image_00002.jpg").unlink()
    with pytest.raises(DataNotFoundError, match="image .*image_00002.jpg not found"):
        data[1]
