"""Retrieval metrics between images and captions: recall@K and R-precision.

* :func:`recall_at_k`: for every query, is a relevant item among the K most similar of the
  gallery? Relevance is given (the exact pair, or the same species as Reed et al.'s
  class-level retrieval).
* :func:`r_precision`: AttnGAN's text-image consistency score. For each image, its own
  caption and 99 captions of other images are ranked by cosine similarity; R-precision is
  the fraction of images whose own caption ranks first (chance: 1 / 100).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ganlab.validation import check_features, check_tensor


def cosine_similarity_matrix(a, b) -> torch.Tensor:
    """(Q, D), (G, D) -> (Q, G) cosine similarities, float64."""
    a = torch.as_tensor(check_features(a, "queries", min_rows=1))
    b = torch.as_tensor(check_features(b, "gallery", min_rows=1))
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"queries and gallery must have the same width, got {a.shape[1]} and {b.shape[1]}"
        )
    return F.normalize(a, dim=1) @ F.normalize(b, dim=1).T


def recall_at_k(similarity, relevant, ks=(1, 5)) -> dict[int, float]:
    """Fraction of queries with a relevant item among their top-K, for each K.

    similarity (Q, G) float; relevant (Q, G) bool. Ties are broken against the query (a
    relevant item must score strictly above the (K+1)-th best). Sample size: Q queries.
    """
    sim = torch.as_tensor(similarity, dtype=torch.float64)
    rel = torch.as_tensor(relevant, dtype=torch.bool)
    check_tensor(sim, "similarity", ("Q", "G"))
    check_tensor(rel, "relevant", tuple(sim.shape), "bool", why="the shape of similarity")
    if not rel.any(1).all():
        raise ValueError("every query needs at least one relevant gallery item")
    best_relevant = sim.masked_fill(~rel, -torch.inf).amax(1)  # (Q,)
    # rank of the best relevant item = number of irrelevant items scoring at least as high
    rank = (sim.masked_fill(rel, -torch.inf) >= best_relevant[:, None]).sum(1)  # (Q,)
    out = {}
    for k in ks:
        if not 1 <= int(k) <= sim.shape[1]:
            raise ValueError(f"K must be in [1, {sim.shape[1]}], got {k}")
        out[int(k)] = float((rank < k).double().mean())
    return out


def r_precision(
    image_features, text_features, candidates: int = 100, splits: int = 10, seed: int = 0
) -> tuple[float, float]:
    """AttnGAN's R-precision: (mean, std over ``splits`` folds of the images).

    Row i of ``image_features`` (N, D) and ``text_features`` (N, D) is a matching pair (an
    image and the caption it was generated from). Each image ranks its caption among
    ``candidates - 1`` captions of other rows drawn at random; success when its own caption
    scores strictly highest by cosine similarity. Sample size: N images (N >= candidates).
    """
    img = torch.as_tensor(check_features(image_features, "image_features"))
    txt = torch.as_tensor(check_features(text_features, "text_features"))
    n = img.shape[0]
    check_tensor(txt, "text_features", tuple(img.shape), why="paired row by row with the images")
    if n < candidates:
        raise ValueError(
            f"R-precision with {candidates} candidates needs at least {candidates} pairs, got {n}"
        )
    rng = np.random.default_rng(seed)
    # for row i, candidates-1 distinct other rows: sample from n-1 and skip i
    others = np.stack([rng.choice(n - 1, candidates - 1, replace=False) for _ in range(n)])
    others = others + (others >= np.arange(n)[:, None])
    index = torch.from_numpy(np.concatenate([np.arange(n)[:, None], others], 1))  # (N, candidates)
    img_n, txt_n = F.normalize(img, dim=1), F.normalize(txt, dim=1)
    scores = torch.einsum("nd,ncd->nc", img_n, txt_n[index])  # (N, candidates)
    hit = (scores[:, 1:] < scores[:, :1]).all(1).double().numpy()
    folds = np.array_split(rng.permutation(n), splits)
    per_fold = np.array([hit[f].mean() for f in folds])
    return float(hit.mean()), float(per_fold.std())
