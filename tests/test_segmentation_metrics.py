"""SPADE's protocol metrics (mIoU, pixel accuracy) against direct per-class computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab.errors import DtypeError
from ganlab.metrics import (
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
    segmentation_scores,
)


def reference(pred: np.ndarray, target: np.ndarray, c: int, ignore=None):
    """IoU per class and accuracy by sets, one class at a time (no confusion matrix)."""
    keep = np.ones(target.shape, bool) if ignore is None else target != ignore
    ious = []
    for k in range(c):
        inter = np.sum((pred == k) & (target == k) & keep)
        union = np.sum(((pred == k) | (target == k)) & keep)
        ious.append(inter / union if union else np.nan)
    acc = np.sum((pred == target) & keep) / keep.sum()
    return np.array(ious), acc


def test_hand_example():
    target = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 1], [1, 1]])
    # class 0: TP 1, FN 1, FP 0 -> 1/2; class 1: TP 2, FP 1 -> 2/3; class 2 absent
    assert mean_iou(pred, target, 3) == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert pixel_accuracy(pred, target, 3) == pytest.approx(3 / 4)
    assert confusion_matrix(pred, target, 3).tolist() == [[1, 1, 0], [0, 2, 0], [0, 0, 0]]
    assert mean_iou(target, target, 3) == 1.0 and pixel_accuracy(target, target, 3) == 1.0


@pytest.mark.parametrize("ignore", [None, 5])
def test_matches_direct_computation_on_random_maps(ignore):
    rng = np.random.default_rng(0)
    c = 6
    target = rng.integers(0, c, (4, 16, 16))
    pred = np.where(rng.random(target.shape) < 0.6, target, rng.integers(0, c - 1, target.shape))
    ious, acc = reference(pred, target, c, ignore)
    scores = segmentation_scores(pred, target, c, ignore_index=ignore)
    keep = target != ignore if ignore is not None else np.ones(target.shape, bool)
    if ignore is not None:
        # ignored target pixels are dropped whatever was predicted there
        assert scores["pixels"] == keep.sum()
    got = iou_per_class(confusion_matrix(pred, target, c, ignore))
    np.testing.assert_allclose(got, ious, equal_nan=True)
    assert scores["miou"] == pytest.approx(np.nanmean(ious))
    assert scores["accuracy"] == pytest.approx(acc)
    assert mean_iou(pred, target, c, ignore) == pytest.approx(np.nanmean(ious))
    assert pixel_accuracy(pred, target, c, ignore) == pytest.approx(acc)


def test_logits_and_torch_inputs_give_the_same_numbers():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=gen)
    target = torch.randint(0, 4, (2, 8, 8), generator=gen)
    by_ids = segmentation_scores(logits.argmax(1), target, 4, ["a", "b", "c", "d"])
    by_logits = segmentation_scores(logits, target, 4, ["a", "b", "c", "d"])
    assert by_ids == by_logits and set(by_ids["per_class_iou"]) == {"a", "b", "c", "d"}
    ref, acc = reference(logits.argmax(1).numpy(), target.numpy(), 4)
    assert by_ids["miou"] == pytest.approx(np.nanmean(ref)) and by_ids["accuracy"] == acc


def test_absent_classes_are_left_out_of_the_mean():
    target = np.zeros((8, 8), int)
    target[:, 4:] = 1
    scores = segmentation_scores(target, target, 10)
    assert scores["miou"] == 1.0  # 8 absent classes are not zeros in the mean
    assert scores["per_class_iou"]["2"] is None


def test_bad_inputs_are_named():
    t = np.zeros((4, 4), int)
    with pytest.raises(ValueError, match="same shape"):
        mean_iou(np.zeros((4, 5), int), t, 3)
    with pytest.raises(DtypeError, match="integer class ids"):
        mean_iou(np.zeros((4, 4)), t, 3)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        mean_iou(np.full((4, 4), 3), t, 3)
    with pytest.raises(ValueError, match=r"0\.\.2"):
        pixel_accuracy(t, np.full((4, 4), -1), 3)
    with pytest.raises(ValueError, match="no|at least one"):
        pixel_accuracy(t, np.full((4, 4), 255), 3, ignore_index=255)
    with pytest.raises(ValueError, match="logits must have shape"):
        mean_iou(torch.randn(1, 4, 4, 4), torch.zeros(1, 4, 4, dtype=torch.long), 3)
    with pytest.raises(ValueError, match="num_classes"):
        mean_iou(t, t, 0)
