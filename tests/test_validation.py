"""ganlab.validation, and the bad inputs of issue 13 that models, data, text, judges, metrics
and viz now refuse (or convert, or warn about) with a message naming what was expected."""

from __future__ import annotations

import struct
import warnings

import numpy as np
import pytest
import torch

from ganlab.data.cub import CUBBirds, enlarged_box
from ganlab.data.digits import load_digits
from ganlab.data.text_fixtures import make_cub_fixture
from ganlab.errors import DataNotFoundError, DtypeError, GanLabWarning
from ganlab.judges.birds import BirdJudge
from ganlab.judges.digits import DigitJudge
from ganlab.metrics import feature_moments, frechet_distance
from ganlab.models.cgan import ConvDiscriminator, ConvGenerator, PaperGenerator
from ganlab.text.encoders import JointImageEncoder, JointTextEncoder
from ganlab.text.train import CaptionEncoder
from ganlab.text.vocab import Vocabulary, birds_vocabulary
from ganlab.validation import (
    check_captions,
    check_count,
    check_images,
    check_labels,
    check_lengths,
    check_tensor,
    padding_mask,
    values_checkable,
)
from ganlab.viz.birds import retrieve


@pytest.fixture
def no_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ------------------------------------------------------------------ the module itself


def test_check_tensor_names_the_expected_kind_and_shape():
    z = torch.zeros(3, 8)
    assert check_tensor(z, "z", ("B", 8)) is z  # a letter is a free size
    with pytest.raises(ValueError, match=r"z must have shape \(B, 9\), got shape \(3, 8\)"):
        check_tensor(z, "z", ("B", 9))
    with pytest.raises(ValueError, match=r"shape \(2, 8\) \(one row per image\), got shape"):
        check_tensor(z, "z", (2, 8), why="one row per image")
    with pytest.raises(DtypeError, match=r"z must be a float tensor of shape \(B, 8\).*int64"):
        check_tensor(z.long(), "z", ("B", 8))
    with pytest.raises(DtypeError, match="an integer"):
        check_tensor(torch.ones(3, dtype=torch.bool), "y", ("N",), "int")  # bool is no integer
    with pytest.raises(DtypeError, match="torch.Tensor.*ndarray"):
        check_tensor(np.zeros((3, 8)), "z", ("B", 8))
    err = DtypeError("x")
    assert isinstance(err, TypeError) and isinstance(err, ValueError)


def test_check_images_dtype_shape_and_range():
    x = torch.zeros(2, 3, 4, 4)
    assert check_images(x, channels=3, size=4) is x
    with pytest.raises(DtypeError, match=r"float tensor in \[-1, 1\].*127\.5"):
        check_images(x.to(torch.uint8))
    with pytest.raises(ValueError, match=r"\(N, 1, 4, 4\)"):
        check_images(x, channels=1, size=4)
    pixels = torch.linspace(0, 255, 96).view(2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"values in \[-1, 1\], got values in \[0, 255\]"):
        check_images(pixels)
    check_images(pixels, values=False)  # no range read: no host sync
    check_images(x + 1.05)  # within the tolerance of a generator without a final tanh
    with pytest.raises(ValueError, match="NaN"):
        check_images(x / 0)


def test_labels_lengths_counts_and_captions():
    y = torch.tensor([0, 9, 3])
    assert check_labels(y, 10) is y
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.9, got values in 0\.\.12"):
        check_labels(torch.tensor([0, 12]), 10)
    check_labels(torch.tensor([0, 12]), 10, values=False)
    with pytest.raises(ValueError, match=r"must be in \[1, 5\].*0\.\.5"):
        check_lengths(torch.tensor([5, 0]), 5)
    with pytest.raises(ValueError, match=r"lengths must have shape \(3,\)"):
        check_lengths(torch.tensor([5, 2]), 5, batch=3)
    assert check_count(np.int64(4), "n") == 4
    for bad, error in ((0, ValueError), (-2, ValueError), (2.5, DtypeError), (True, DtypeError)):
        with pytest.raises(error, match="n must be an integer >= 1"):
            check_count(bad, "n")
    assert check_captions("a bird") == ["a bird"]
    with pytest.raises(DtypeError, match="caption 1 is a int"):
        check_captions(["a bird", 3])


def test_padding_mask_by_hand():
    mask = padding_mask(torch.tensor([3, 1, 0]), 4)
    assert mask.tolist() == [
        [False, False, False, True],
        [False, True, True, True],
        [True, True, True, True],
    ]
    with pytest.raises(DtypeError, match="lengths"):
        padding_mask(torch.tensor([3.0]), 4)


def test_value_checks_are_free_on_the_cpu_and_kept_out_of_accelerator_training():
    cpu, meta = torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long, device="meta")
    assert values_checkable(cpu, training=True) and values_checkable(meta, training=False)
    assert not values_checkable(meta, training=True)  # a GPU-like device while training


# ------------------------------------------------------------------ issue 13: judges


def test_judges_and_image_encoders_convert_float64_images():
    torch.manual_seed(0)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    digit = DigitJudge().eval()
    torch.testing.assert_close(digit(x.double()), digit(x))  # float64: converted, not refused
    birds = torch.rand(2, 3, 64, 64) * 2 - 1
    bird = BirdJudge(width=4).eval()
    torch.testing.assert_close(bird.features(birds.double()), bird.features(birds))
    encoder = JointImageEncoder(embed_dim=8, width=4).eval()
    assert encoder(birds.double()).dtype == torch.float32
    with pytest.raises(DtypeError, match="uint8"):  # integer pixels stay refused
        digit((x * 127.5 + 127.5).to(torch.uint8))


# ------------------------------------------------------------------ issue 13: the CGAN models


@pytest.mark.parametrize("G", [ConvGenerator(z_dim=8, width=4), PaperGenerator(z_dim=8)])
def test_cgan_generator_refuses_out_of_range_labels_in_train_mode(G):
    G.train()
    z = torch.zeros(2, 8)
    for labels in ([1, 12], [-1, 3]):
        with pytest.raises(ValueError, match=r"labels y must lie in 0\.\.9"):
            G(z, torch.tensor(labels))
    D = ConvDiscriminator(width=4).train()
    with pytest.raises(ValueError, match=r"0\.\.9"):
        D(torch.zeros(2, 1, 28, 28), torch.tensor([1, 10]))


def test_cgan_training_off_the_cpu_reads_no_values():
    """A meta tensor has no values to read: a forward pass that tried (a host sync on a GPU)
    would fail. In training none is tried; in eval mode the labels are read."""
    G = ConvGenerator(z_dim=8, width=4).to("meta").train()
    D = ConvDiscriminator(width=4).to("meta").train()
    z, y = torch.zeros(2, 8, device="meta"), torch.zeros(2, dtype=torch.long, device="meta")
    assert D(G(z, y), y).shape == (2,)
    with pytest.raises(RuntimeError, match="meta"):
        G.eval()(z, y)


def test_cgan_names_both_shapes_for_3_z_and_2_labels():
    G = ConvGenerator(z_dim=8, width=4).eval()
    with pytest.raises(
        ValueError,
        match=r"labels y must have shape \(3,\) \(one label per row of z, which has shape "
        r"\(3, 8\)\), got shape \(2,\)",
    ):
        G(torch.zeros(3, 8), torch.tensor([1, 2]))
    D = ConvDiscriminator(width=4).eval()
    with pytest.raises(ValueError, match=r"shape \(3,\) \(one label per row of the images"):
        D(torch.zeros(3, 1, 28, 28), torch.tensor([1, 2]))


def test_class_grid_with_a_negative_count_says_what_is_expected():
    from ganlab.chapters.cgan import class_grid

    G = ConvGenerator(z_dim=8, width=4).eval()
    with pytest.raises(ValueError, match=r"n_per_class must be a positive integer, got -2"):
        class_grid(G, -2)
    images, labels = class_grid(G, 1)
    assert images.shape == (10, 1, 28, 28) and labels.tolist() == list(range(10))


# ------------------------------------------------------------------ issue 13: data files


def _write_idx(path, array):
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape
    )
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.fixture
def mnist_raw(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte", np.zeros((3, 28, 28)))
    _write_idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 2]))
    return raw


def test_garbage_mnist_idx_files_are_refused_naming_the_file(mnist_raw):
    images = mnist_raw / "train-images-idx3-ubyte"
    images.write_bytes(b"\x00\x00\x08\x03" + b"\x00" * 4)  # 3 sizes announced, 1 present
    with pytest.raises(DataNotFoundError, match="train-images-idx3-ubyte is truncated"):
        load_digits("train", root=mnist_raw.parents[1])
    images.write_bytes(bytes(range(200, 256)) * 4)  # random bytes
    with pytest.raises(DataNotFoundError, match=r"not an MNIST IDX file.*0x803"):
        load_digits("train", root=mnist_raw.parents[1])
    _write_idx(images, np.zeros((3, 14, 14)))  # a valid IDX file of the wrong shape
    with pytest.raises(
        DataNotFoundError, match=r"expected images \(N, 28, 28\), got \(3, 14, 14\)"
    ):
        load_digits("train", root=mnist_raw.parents[1])


def test_an_mnist_label_of_250_is_refused(mnist_raw):
    _write_idx(mnist_raw / "train-labels-idx1-ubyte", np.array([0, 250, 2]))
    with pytest.raises(DataNotFoundError, match=r"labels must lie in 0\.\.9, got 250 at index 1"):
        load_digits("train", root=mnist_raw.parents[1])


@pytest.fixture
def cub(tmp_path):
    return make_cub_fixture(tmp_path / "birds", n_classes=2, per_class=1)


def test_a_latin1_cub_list_is_refused_naming_file_and_line(cub):
    path = cub / "CUB_200_2011" / "images.txt"
    lines = path.read_text().splitlines()
    lines[1] = lines[1].replace(".jpg", "_caf\u00e9.jpg")
    path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    with pytest.raises(DataNotFoundError, match=r"images.txt, line 2: not UTF-8 \(byte 0xe9\)"):
        CUBBirds(cub)


def test_a_negative_cub_bounding_box_is_refused(cub):
    path = cub / "CUB_200_2011" / "bounding_boxes.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "2 5.0 4.0 -8.0 9.0"]) + "\n")
    with pytest.raises(DataNotFoundError, match=r"bounding_boxes.txt, line 2: .*w, h > 0"):
        CUBBirds(cub, "all")
    CUBBirds(cub, "all", crop=False)  # the boxes are only read for the crop
    with pytest.raises(ValueError, match=r"x, y >= 0 and w, h > 0, got \(-3, 0, 10, 10\)"):
        enlarged_box((-3, 0, 10, 10), 40, 30)


# ------------------------------------------------------------------ issue 13: captions


def test_encode_refuses_max_len_below_one():
    vocab = birds_vocabulary()
    for bad in (-1, 0):
        with pytest.raises(ValueError, match=f"max_len must be an integer >= 1, got {bad}"):
            vocab.encode("a red bird", max_len=bad)
    with pytest.raises(ValueError, match="max_len"):
        Vocabulary(["bird"], max_len=0)
    ids, lengths = vocab.encode("a red bird", max_len=2)
    assert ids.shape == (1, 2) and lengths.tolist() == [2]


def test_a_caption_with_no_known_word_warns_naming_it(no_warnings):
    vocab = birds_vocabulary()
    vocab.encode(["a red bird", "a zorblat bird"])  # one known word is enough: no warning
    with pytest.warns(GanLabWarning, match=r"caption 1 'zorblat qux': no word the vocabulary"):
        vocab.encode(["a red bird", "zorblat qux"])
    # drawing and ranking go through the same encoder, so they warn too
    torch.manual_seed(0)
    text = CaptionEncoder("joint", vocab, JointTextEncoder(len(vocab), embed_dim=8).eval())
    with pytest.warns(GanLabWarning, match="caption 0 'glorp'"):
        text(["glorp"])
    images = torch.rand(3, 3, 64, 64) * 2 - 1
    image_encoder = JointImageEncoder(embed_dim=8, width=4).eval()
    with pytest.warns(GanLabWarning, match="caption 0 'glorp'"):
        retrieve("glorp", text, image_encoder, images, k=2)


# ------------------------------------------------------------------ issue 13: Frechet distance


def test_frechet_distance_warns_when_n_is_at_most_the_feature_dimension(no_warnings):
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(100, 128)), rng.normal(size=(100, 128))  # one distribution
    with pytest.warns(GanLabWarning, match=r"n = 100 samples of D = 128.*rank-deficient") as rec:
        value = frechet_distance(a, b)
    assert round(value) == 83  # the module docstring's number, far above 0
    assert "feats_a has n = 100, feats_b has n = 100" in str(rec[0].message)
    assert "n >= 1280" in str(rec[0].message)
    with pytest.warns(GanLabWarning, match="features has n = 100"):
        feature_moments(a)
    big = rng.normal(size=(1000, 16))
    assert frechet_distance(big[:500], big[500:]) < 1.0  # n >> D: no warning (no_warnings)
