"""Text alignment: does a generated image show the attributes its caption names?

A caption names only some attributes ("a bird with a red crown and a short beak"). The
bird judge reads every attribute of the generated image; alignment is the judge's
agreement with the caption on exactly the attributes the caption names, pooled over all
(image, named attribute) pairs, and per attribute group.

Chance level is what a generator ignoring the text would score if its images' attributes
were uniformly random: the mean of 1 / (number of values) over the named pairs. A model
trained without text does better than that only by matching the attribute frequencies.
"""

from __future__ import annotations

import torch

from ganlab.validation import check_tensor


def text_alignment(
    predicted, named, groups: tuple[str, ...], num_values: tuple[int, ...] | None = None
) -> dict:
    """Agreement of judged attributes with the named ones.

    predicted (N, G) int codes from the judge; named (N, G) int codes the caption names, -1
    where it names nothing. Returns ``value`` (pooled accuracy), ``n`` (named pairs),
    ``images`` (N), ``per_group`` ({group: (accuracy, count)}) and, given ``num_values``,
    ``chance``. Sample size: the number of named pairs, from N images.
    """
    pred = torch.as_tensor(predicted)
    want = torch.as_tensor(named)
    check_tensor(pred, "predicted (attribute codes)", ("N", len(groups)), "int")
    check_tensor(want, "named (codes, -1 = not named)", tuple(pred.shape), "int")
    mask = want >= 0
    if not mask.any():
        raise ValueError("no caption names any attribute: nothing to measure")
    hit = (pred == want) & mask
    per_group = {}
    for i, g in enumerate(groups):
        count = int(mask[:, i].sum())
        if count:
            per_group[g] = (float(hit[:, i].sum()) / count, count)
    out = {
        "value": float(hit.sum()) / int(mask.sum()),
        "n": int(mask.sum()),
        "images": int(pred.shape[0]),
        "per_group": per_group,
    }
    if num_values is not None:
        inv = torch.tensor([1.0 / v for v in num_values], dtype=torch.float64)
        out["chance"] = float((mask.double() * inv).sum() / mask.sum())
    return out
