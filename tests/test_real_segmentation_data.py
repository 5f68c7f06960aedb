"""ADE20K and Cityscapes loaders on tiny fixtures in their on-disk layouts, written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.data.ade20k import ADE20K, DONTCARE
from ganlab.data.cityscapes import Cityscapes
from ganlab.errors import DataNotFoundError


def write(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return array


@pytest.fixture
def ade(tmp_path):
    base = tmp_path / "ADEChallengeData2016"
    rng = np.random.default_rng(0)
    maps = {}
    for split, stem in (("training", "ADE_train_00000001"), ("training", "ADE_train_00000002"),
                        ("validation", "ADE_val_00000001")):  # fmt: skip
        write(base / "images" / split / f"{stem}.jpg",
              rng.integers(0, 256, (12, 16, 3), dtype=np.uint8))  # fmt: skip
        maps[stem] = write(base / "annotations" / split / f"{stem}.png",
                           rng.integers(0, 151, (12, 16), dtype=np.uint8))  # fmt: skip
    return tmp_path, maps


def test_ade20k_pairs_images_with_maps_and_shifts_labels_as_spade(ade):
    root, maps = ade
    data = ADE20K(root, "training", size=12)
    assert len(data) == 2 and data[0]["name"] == "ADE_train_00000001"
    item = data[1]
    assert item["image"].shape == (3, 12, 12) and item["image"].dtype == torch.float32
    raw = Image.fromarray(maps["ADE_train_00000002"]).resize((12, 12), Image.Resampling.NEAREST)
    raw = torch.from_numpy(np.array(raw).astype(np.int64))
    want = torch.where(raw == 0, torch.tensor(DONTCARE), raw - 1)  # SPADE's postprocess
    assert torch.equal(item["labels"], want)
    assert set(item["labels"].unique().tolist()) <= set(range(151))
    # nearest resizing keeps class ids (no new values appear)
    assert set(item["labels"].unique().tolist()) <= set((want.unique()).tolist())
    raw_data = ADE20K(root / "ADEChallengeData2016", "validation", size=16, spade_labels=False)
    val = Image.fromarray(maps["ADE_val_00000001"]).resize((16, 16), Image.Resampling.NEAREST)
    assert torch.equal(raw_data[0]["labels"], torch.from_numpy(np.array(val).astype(np.int64)))


def test_ade20k_errors_show_the_expected_tree(ade, tmp_path):
    root, _ = ade
    with pytest.raises(DataNotFoundError, match="ADEChallengeData2016/") as err:
        ADE20K(tmp_path / "nowhere")
    assert "annotations/training" in str(err.value)
    (root / "ADEChallengeData2016" / "annotations" / "training" / "ADE_train_00000002.png").unlink()
    with pytest.raises(DataNotFoundError, match="no annotation"):
        ADE20K(root, "training")
    with pytest.raises(ValueError, match="unknown ADE20K split"):
        ADE20K(root, "train")


@pytest.fixture
def cityscapes(tmp_path):
    rng = np.random.default_rng(1)
    out = {}
    for split, city, n in (("train", "aachen", 2), ("val", "lindau", 1)):
        for k in range(n):
            name = f"{city}_{k:06d}_000019"
            write(tmp_path / "leftImg8bit" / split / city / f"{name}_leftImg8bit.png",
                  rng.integers(0, 256, (8, 16, 3), dtype=np.uint8))  # fmt: skip
            labels = write(tmp_path / "gtFine" / split / city / f"{name}_gtFine_labelIds.png",
                           rng.integers(0, 34, (8, 16), dtype=np.uint8))  # fmt: skip
            out[name] = labels
    inst = (rng.integers(0, 3, (8, 16)) + 26000).astype(np.uint16)  # 16-bit, as Cityscapes
    Image.fromarray(inst).save(
        tmp_path / "gtFine" / "train" / "aachen" / "aachen_000000_000019_gtFine_instanceIds.png"
    )
    return tmp_path, out, inst


def test_cityscapes_reads_label_ids_at_aspect_two(cityscapes):
    root, maps, inst = cityscapes
    data = Cityscapes(root, "train", size=8)
    assert len(data) == 2 and data[0]["name"] == "aachen_000000_000019"
    item = data[0]
    assert item["image"].shape == (3, 8, 16)
    assert torch.equal(item["labels"], torch.from_numpy(maps[item["name"]].astype(np.int64)))
    assert torch.equal(item["instances"], torch.from_numpy(inst.astype(np.int64)))
    assert data[1]["instances"] is None  # instanceIds are optional
    small = Cityscapes(root, "val", size=4)[0]
    assert small["image"].shape == (3, 4, 8) and small["labels"].shape == (4, 8)
    assert set(small["labels"].unique().tolist()) <= set(np.unique(maps[small["name"]]).tolist())


def test_cityscapes_errors_show_the_expected_tree(cityscapes, tmp_path):
    root, _, _ = cityscapes
    with pytest.raises(DataNotFoundError, match="leftImg8bit/<split>/<city>"):
        Cityscapes(tmp_path / "nowhere")
    (root / "gtFine" / "val" / "lindau" / "lindau_000000_000019_gtFine_labelIds.png").unlink()
    with pytest.raises(DataNotFoundError, match="no labelIds map"):
        Cityscapes(root, "val")
    with pytest.raises(ValueError, match="unknown Cityscapes split"):
        Cityscapes(root, "validation")
