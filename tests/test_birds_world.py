"""The birds world: deterministic, captions agree with images, splits hold species out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab.data.birds import (
    ATTRIBUTES,
    GROUPS,
    MAX_WORDS,
    BirdsWorld,
    decode,
    encode,
    load_birds,
    parse_caption,
    render,
    species_attributes,
    species_split,
    tokenize,
)
from ganlab.data.birds.attributes import SPECIES_GROUPS, species_table


def test_species_table_is_fixed_distinct_and_split_150_50():
    table = species_table()
    assert table.shape == (200, 10)
    assert len({tuple(r) for r in table.tolist()}) == 200
    split = species_split()
    assert len(split["train"]) == 150 and len(split["zeroshot"]) == 50
    assert not set(split["train"]) & set(split["zeroshot"])
    # every single value still appears among the training species (only combinations are new)
    train_rows = table[split["train"]]
    for j, g in enumerate(SPECIES_GROUPS):
        assert set(train_rows[:, j]) == set(range(len(ATTRIBUTES[g])))


def test_birds_are_deterministic_and_independent_of_order(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path))
    world = BirdsWorld("train")
    a = [world.image(i, 32) for i in (5, 2, 9)]
    b = [BirdsWorld("train").image(i, 32) for i in (5, 2, 9)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert world.bird(5).captions == BirdsWorld("train").bird(5).captions
    assert not np.array_equal(world.image(5, 32), BirdsWorld("train", seed=1).image(5, 32))
    data = load_birds(12, "train", 32, progress=False)
    cached = load_birds(12, "train", 32, progress=False)  # second load reads the cache
    assert torch.equal(data.images, cached.images) and data.captions == cached.captions
    assert np.array_equal(data.images[9].permute(1, 2, 0).numpy(), world.image(9, 32))


def test_images_have_the_requested_size_and_range():
    world = BirdsWorld("test")
    for size in (16, 64, 256):
        img = world.image(3, size)
        assert img.shape == (size, size, 3) and img.dtype == np.uint8
        assert img.std() > 10  # not blank
    with pytest.raises(ValueError, match="between 16 and 256"):
        world.image(3, 8)


def test_attributes_change_the_picture_where_they_should():
    base = species_attributes(0) | {
        "size": "large",
        "pose": "perched",
        "orientation": "right",
        "background": "sky",
    }
    img = render(base, 64).astype(int)
    for group in ("crown_color", "wing_color", "beak_shape", "background", "orientation"):
        other = next(v for v in ATTRIBUTES[group] if v != base[group])
        changed = render(base | {group: other}, 64).astype(int)
        assert np.abs(changed - img).sum() > 300, group
    with pytest.raises(ValueError, match="crown_color"):
        render(base | {"crown_color": "pink"}, 64)


def test_every_caption_names_only_true_attributes_and_parses_back():
    world = BirdsWorld("train")
    named_groups = set()
    for i in range(400):
        bird = world.bird(i)
        assert len(bird.captions) == 10 and len(set(bird.captions)) >= 5
        for caption, mentions in zip(bird.captions, bird.mentions, strict=True):
            assert 2 <= len(mentions)
            assert len(tokenize(caption)) <= MAX_WORDS
            for group, value in mentions.items():
                assert bird.attributes[group] == value
            assert parse_caption(caption) == mentions, caption
            named_groups |= set(mentions)
    assert named_groups == set(GROUPS)  # every group gets named somewhere


def test_parser_reads_hand_written_captions():
    assert parse_caption("this bird has a red crown, a white belly and a short pointed beak") == {
        "crown_color": "red",
        "belly_color": "white",
        "beak_length": "short",
        "beak_shape": "pointed",
    }
    assert parse_caption("a small yellow-bellied bird with spotted blue wings, in flight") == {
        "size": "small",
        "belly_color": "yellow",
        "wing_pattern": "spotted",
        "wing_color": "blue",
        "pose": "flying",
    }


def test_zeroshot_split_uses_only_held_out_species():
    held = set(species_split()["zeroshot"].tolist())
    for split, inside in (("train", False), ("test", False), ("zeroshot", True)):
        species = {BirdsWorld(split).bird(i).species for i in range(60)}
        assert (species <= held) == inside and (not species & held) == (not inside)


def test_attribute_codes_round_trip_and_name_errors():
    bird = BirdsWorld("train").bird(0)
    assert decode(encode(bird.attributes)) == bird.attributes
    with pytest.raises(ValueError, match="lack the groups"):
        encode({"crown_color": "red"})


def test_load_birds_rejects_bad_arguments():
    with pytest.raises(ValueError, match="unknown birds split"):
        load_birds(10, "validation")
    with pytest.raises(ValueError, match="positive int"):
        load_birds(0)
