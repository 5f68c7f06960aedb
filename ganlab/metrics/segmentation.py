r"""SPADE's protocol: segment the generated images, compare with the map they were made from.

Park et al. (2019) score a map-to-image generator by running a pretrained semantic segmenter
on its images and comparing the predicted map with the input map: if the picture shows the
layout, the segmenter finds it again. Two numbers, both from one confusion matrix
accumulated over every pixel of every image (the segmentation benchmarks' convention, not a
mean of per-image scores):

    M[t, p] = #pixels of true class t predicted as p      (pixels with t == ignore_index skipped)

    IoU_c  = M[c, c] / (sum_p M[c, p] + sum_t M[t, c] - M[c, c])   = TP / (TP + FP + FN)
    mIoU   = mean of IoU_c over the classes with TP + FP + FN > 0 (a class absent from both
             the truth and the prediction has no IoU and is left out)
    pixel accuracy = sum_c M[c, c] / sum M

SPADE reports mIoU / accuracy of 37.4 / 67.9 on COCO-Stuff, 38.5 / 79.9 on ADE20K and
62.3 / 81.9 on Cityscapes (as percentages). Here the segmenter is the landscapes judge
(``ganlab.judges.landscapes``) or any network giving (N, C, H, W) logits.

Inputs: predicted and true maps of equal shape (N, H, W) or (H, W), integer class ids
(torch or numpy); logits (N, C, H, W) are accepted as ``pred`` (argmax over C).
"""

from __future__ import annotations

import numpy as np
import torch

from ganlab.errors import DtypeError


def _as_ids(x, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.dtype.kind not in "iu":
        raise DtypeError(
            f"{name} must hold integer class ids, got dtype {arr.dtype}; for logits (N, C, H, W) "
            "pass them as pred (argmax is taken) or take .argmax(1) first"
        )
    return arr.astype(np.int64, copy=False)


def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = None) -> np.ndarray:
    """``(C, C)`` int64 counts ``M[t, p]`` over all pixels (see the module docstring).

    ``pred``: class ids of the same shape as ``target``, or logits with one more axis (the
    class axis, second: (N, C, H, W)). Pixels whose target is ``ignore_index`` are skipped;
    every other value must lie in ``0..num_classes-1``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    t = _as_ids(target, "target")
    if isinstance(pred, torch.Tensor) and pred.is_floating_point():
        if pred.dim() != t.ndim + 1 or pred.shape[1] != num_classes:
            raise ValueError(
                f"logits must have shape (N, {num_classes}, H, W) for target {t.shape}, got "
                f"{tuple(pred.shape)}"
            )
        pred = pred.argmax(1)
    elif isinstance(pred, np.ndarray) and pred.dtype.kind == "f" and pred.ndim == t.ndim + 1:
        pred = pred.argmax(1)
    p = _as_ids(pred, "pred")
    if p.shape != t.shape:
        raise ValueError(f"pred and target must have the same shape, got {p.shape} and {t.shape}")
    keep = np.ones(t.shape, bool) if ignore_index is None else t != ignore_index
    p, t = p[keep], t[keep]
    for name, a in (("pred", p), ("target", t)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            extra = "" if ignore_index is None else f" (or ignore_index {ignore_index})"
            raise ValueError(
                f"{name} must hold class ids in 0..{num_classes - 1}{extra}, got values in "
                f"{a.min()}..{a.max()}"
            )
    return np.bincount(t * num_classes + p, minlength=num_classes**2).reshape(
        num_classes, num_classes
    )


def iou_per_class(conf: np.ndarray) -> np.ndarray:
    """IoU of every class from a confusion matrix; NaN for a class with TP + FP + FN = 0."""
    conf = np.asarray(conf, np.float64)
    tp = np.diag(conf)
    union = conf.sum(0) + conf.sum(1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)


def mean_iou(pred, target, num_classes: int, ignore_index: int | None = None) -> float:
    """mIoU over the classes present in the truth or the prediction. Sample size: every
    non-ignored pixel of every image (report the number of images beside it)."""
    iou = iou_per_class(confusion_matrix(pred, target, num_classes, ignore_index))
    if np.isnan(iou).all():
        raise ValueError("mean_iou needs at least one non-ignored pixel, got none")
    return float(np.nanmean(iou))


def pixel_accuracy(pred, target, num_classes: int, ignore_index: int | None = None) -> float:
    """Fraction of non-ignored pixels whose predicted class is the true one."""
    conf = confusion_matrix(pred, target, num_classes, ignore_index)
    if conf.sum() == 0:
        raise ValueError("pixel_accuracy needs at least one non-ignored pixel, got none")
    return float(np.trace(conf) / conf.sum())


def segmentation_scores(
    pred, target, num_classes: int, class_names=None, ignore_index: int | None = None
) -> dict:
    """``{"miou", "accuracy", "per_class_iou", "pixels"}`` from one confusion matrix;
    ``per_class_iou`` maps class names (or ids) to IoU, ``None`` for absent classes."""
    conf = confusion_matrix(pred, target, num_classes, ignore_index)
    if conf.sum() == 0:
        raise ValueError("segmentation_scores needs at least one non-ignored pixel, got none")
    iou = iou_per_class(conf)
    names = list(class_names) if class_names is not None else list(range(num_classes))
    if len(names) != num_classes:
        raise ValueError(f"class_names must name {num_classes} classes, got {len(names)}")
    return {
        "miou": float(np.nanmean(iou)),
        "accuracy": float(np.trace(conf) / conf.sum()),
        "per_class_iou": {
            str(n): (None if np.isnan(v) else float(v)) for n, v in zip(names, iou, strict=True)
        },
        "pixels": int(conf.sum()),
    }
