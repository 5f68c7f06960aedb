"""Measuring generators on the faces world (chapters 5, 6 and 8), one protocol.

The faces world stands in for FFHQ, CelebA-HQ and AFHQ; the face judge
(:mod:`ganlab.judges.faces`) stands in for Inception. What every chapter of the world reports:

* **Frechet distance** (FD) in the judge's 256-d features, generated vs ``n`` real ``test``
  faces, with the **payoff ladder** beside it (COURSE.md): real vs real (``n`` other real
  faces), and real faces degraded three ways, drawn at half and at quarter resolution then
  upsampled, and blurred. "Our samples sit between the half-resolution and the blurred rung"
  says more than a bare number. The ladder is computed once per (n, size, domain) and cached.
* **KID** (Binkowski et al. 2018) in the same features: unbiased, so it can be compared
  across sample sizes, which FD cannot.
* **SWD** (PGGAN's sliced Wasserstein distance on Laplacian-pyramid patches, x 10^3 per
  level), with its real-vs-real baseline, when asked (``swd=True``): chapter 5's metric.
* For translation chapters, :func:`domain_report`: the judge's domain accuracy of outputs
  against their target domains, and how much of each source's pose (yaw, pitch, roll)
  survives (:func:`ganlab.metrics.translation.factor_preservation`).

``generate(conditions, seed) -> images (N, 3, H, W) in [-1, 1]`` is what a chapter gives. For
unconditional chapters ``conditions`` is the number of images; images of any size are
resized by the judge itself (it reads 64 px).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import torch
import torch.nn.functional as F

from ganlab.data.faces import CONTINUOUS, DOMAINS, load_faces
from ganlab.metrics.frechet import frechet_distance, kernel_inception_distance

LADDER = (
    "half",
    "quarter",
    "blur",
)  # the degraded-real rungs, best to worst is half, blur, quarter
POSE = ("yaw", "pitch", "roll")
BATCH = 250


@lru_cache(maxsize=2)
def face_judge():
    """The shipped face judge, loaded once (``ganlab.judges.faces.load_face_judge``)."""
    from ganlab.judges.faces import load_face_judge

    return load_face_judge()


@lru_cache(maxsize=2)
def perceptual_distance():
    """The course's LPIPS stand-in: unit-normalised multi-layer face-judge features, uniform
    weights (``ganlab.metrics.perceptual.PerceptualDistance``)."""
    from ganlab.metrics.perceptual import PerceptualDistance

    return PerceptualDistance(face_judge().multilayer_features)


def real_faces(
    n: int, split: str = "test", size: int = 64, domain: str | None = None, offset: int = 0
) -> torch.Tensor:
    """Faces ``offset .. offset + n`` of ``split`` as floats (n, 3, size, size) in [-1, 1]."""
    data = load_faces(offset + n, split, size=size, domain=domain, progress=False)
    return data.float_images(slice(offset, offset + n))


DEGRADATIONS = (*LADDER, "box")  # what :func:`degraded` does; "box" is the birds ladder's blur


def degraded(x: torch.Tensor, how: str) -> torch.Tensor:
    """A rung of the ladder: ``half`` / ``quarter`` (area-downsample, bilinear upsample),
    ``blur`` (the 5 x 5 binomial filter [1, 4, 6, 4, 1] / 16 along each axis, sigma ~1 px) or
    ``box`` (the 5 x 5 box filter, every weight 1 / 25: a stronger blur, sigma ~1.4 px)."""
    size = x.shape[-1]
    if how in ("half", "quarter"):
        small = F.interpolate(x, scale_factor=0.5 if how == "half" else 0.25, mode="area")
        return F.interpolate(small, size=size, mode="bilinear", align_corners=False)
    if how in ("blur", "box"):
        k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0] if how == "blur" else [1.0] * 5)
        k = (k[:, None] * k[None]) / k.sum() ** 2
        c = x.shape[1]
        return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), k.expand(c, 1, 5, 5), groups=c)
    raise ValueError(f"unknown degradation {how!r}: expected one of {', '.join(DEGRADATIONS)}")


def _features(images: torch.Tensor) -> torch.Tensor:
    return face_judge().embed_images(images.float().clamp(-1, 1), batch=BATCH)


@lru_cache(maxsize=8)
def real_reference(n: int, size: int = 64, domain: str | None = None) -> dict:
    """Judge features of ``n`` real test faces and the ladder's FDs against them (cached)."""
    real = real_faces(n, "test", size, domain)
    ref = _features(real)
    other = real_faces(n, "test", size, domain, offset=n)
    ladder = {"real_vs_real": frechet_distance(_features(other), ref)}
    for how in LADDER:
        ladder[f"real_{how}"] = frechet_distance(_features(degraded(other, how)), ref)
    return {"images": real, "features": ref, "ladder": ladder}


def generate_all(generate: Callable, n: int, seed: int, conditions=None) -> torch.Tensor:
    """``n`` images from ``generate`` in batches of 250 (batch ``b`` uses ``seed + b``).

    ``conditions``: None (unconditional: each call gets its image count), or a sequence of
    ``n`` conditions (e.g. target domains) handed out batch by batch."""
    out = []
    for b, s in enumerate(range(0, n, BATCH)):
        cond = min(BATCH, n - s) if conditions is None else conditions[s : s + BATCH]
        out.append(generate(cond, seed + b).detach().float().cpu())
    images = torch.cat(out)
    if images.ndim != 4 or images.shape[:2] != (n, 3):
        raise ValueError(f"generate must give (N, 3, H, W) images, got {tuple(images.shape)}")
    return images.clamp(-1, 1)


def rung(fd: float, ladder: dict) -> str:
    """Where an FD stands on the ladder, in words (``"between real_half and real_blur"``)."""
    rungs = sorted(ladder.items(), key=lambda kv: kv[1])
    below = [name for name, v in rungs if v <= fd]
    above = [name for name, v in rungs if v > fd]
    if not below:
        return f"better than {above[0]}"
    if not above:
        return f"worse than {below[-1]}"
    return f"between {below[-1]} and {above[0]}"


def evaluate_faces(
    generate: Callable,
    n: int = 1000,
    size: int = 64,
    seed: int = 0,
    swd: bool = False,
    images: torch.Tensor | None = None,
) -> dict:
    """FD and KID in face-judge features against ``n`` real test faces, with the ladder; SWD
    per pyramid level (and real vs real) if ``swd``. ``images`` skips generation."""
    if images is None:
        images = generate_all(generate, n, seed)
    n = len(images)
    ref = real_reference(n, size)
    feats = _features(images)
    fd = frechet_distance(feats, ref["features"])
    kid, kid_std = kernel_inception_distance(
        feats, ref["features"], subsets=50, subset_size=max(2, min(1000, n // 2))
    )
    result = {
        "n": n,
        "size": size,
        "frechet_distance": {"value": fd, "rung": rung(fd, ref["ladder"]), **ref["ladder"]},
        "kid": {"value": kid, "std": kid_std},
        "features": "face judge (256-d)",
    }
    if swd:
        result["swd"] = swd_report(images, ref["images"])
    return result


def swd_report(images: torch.Tensor, real: torch.Tensor) -> dict:
    """SWD x 10^3 per level of generated vs real, beside real vs other real (same n, size)."""
    from ganlab.metrics.swd import sliced_wasserstein_distance

    if images.shape[-1] != real.shape[-1]:
        images = F.interpolate(images, size=real.shape[-2:], mode="bilinear", antialias=True)
    n, size = len(images), real.shape[-1]
    other = real_faces(n, "test", size, offset=n)
    return {
        "generated": sliced_wasserstein_distance(real, images),
        "real_vs_real": sliced_wasserstein_distance(real, other),
        "n": n,
    }


def summary_metrics(result: dict) -> dict:
    """The headline numbers of an :func:`evaluate_faces` result (what a manifest keeps)."""
    fd = result["frechet_distance"]
    out = {
        "frechet_distance": fd["value"],
        "real_vs_real": fd["real_vs_real"],
        "real_half": fd["real_half"],
        "real_blur": fd["real_blur"],
        "kid": result["kid"]["value"],
        "n": result["n"],
    }
    if "swd" in result:
        out["swd_avg"] = result["swd"]["generated"]["SWDx1e3_avg"]
    return out


@torch.no_grad()
def domain_report(outputs: torch.Tensor, targets: torch.Tensor, sources: torch.Tensor) -> dict:
    """Translation outputs judged: domain accuracy against ``targets`` (indices into
    ``DOMAINS``) with its confusion matrix, and the pose of ``sources`` (row n was translated
    from source n) that survives, per angle, in degrees."""
    from ganlab.metrics.translation import domain_accuracy, domain_confusion, factor_preservation

    judge = face_judge()
    probs = judge.domain_probs(outputs.float().clamp(-1, 1), batch=BATCH)
    targets = torch.as_tensor(targets).long()
    pose_idx = [CONTINUOUS.index(p) for p in POSE]
    src = judge.predict(sources.float())[1][:, pose_idx].rad2deg()
    out = judge.predict(outputs.float())[1][:, pose_idx].rad2deg()
    return {
        "domain_accuracy": domain_accuracy(probs, targets),
        "chance": 1 / len(DOMAINS),
        "confusion": domain_confusion(probs, targets, len(DOMAINS)).tolist(),
        "pose_preservation": factor_preservation(src, out, POSE),
        "n": len(outputs),
    }
