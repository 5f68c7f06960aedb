"""Chapter 1's metrics, measured with the digit judge on real held-out digits.

Reported with their sample sizes and a real-vs-real baseline, so that a number can be read:

* conditional accuracy: the judge's accuracy on G(z | y) against y (chance 10%);
* Frechet distance and KID between judge features of generated and real test digits;
* the paper's Parzen-window log-likelihood of the real test digits under the samples
  (sigma chosen on a validation set of real training digits, images in [0, 1]).
"""

from __future__ import annotations

import torch

from ganlab.data.digits import NUM_CLASSES, load_digits, to_unit

PARZEN_SIGMAS = tuple(torch.logspace(-1, 0, 10).tolist())  # 0.1 ... 1.0, as in Goodfellow 2014


@torch.no_grad()
def judge_outputs(judge, images: torch.Tensor, batch: int = 500):
    """(features, logits) of the judge on images in [-1, 1]."""
    feats, logits = [], []
    for chunk in images.split(batch):
        feats.append(judge.features(chunk))
        logits.append(judge(chunk))
    return torch.cat(feats), torch.cat(logits)


def evaluate_images(fake: torch.Tensor, labels: torch.Tensor, seed: int = 0) -> dict:
    """Every chapter-1 metric for generated digits ``fake`` meant to show ``labels``."""
    from ganlab.judges.digits import load_digit_judge
    from ganlab.metrics import (
        conditional_accuracy,
        frechet_distance,
        kernel_inception_distance,
        parzen_log_likelihood,
        select_parzen_sigma,
    )

    judge = load_digit_judge()
    x_test, y_test = load_digits("test")
    x_train, _ = load_digits("train")
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x_train), generator=gen)
    n = len(fake)
    n_ref = min(n, len(x_train) - 1000)
    x_ref, x_val = x_train[perm[:n_ref]], x_train[perm[-1000:]]

    f_fake, logits_fake = judge_outputs(judge, fake)
    f_test, logits_test = judge_outputs(judge, x_test)
    f_ref, _ = judge_outputs(judge, x_ref)

    acc = conditional_accuracy(logits_fake, labels)
    acc_real = conditional_accuracy(logits_test, y_test)
    fd = frechet_distance(f_fake, f_test)
    fd_real = frechet_distance(f_ref, f_test)
    kid, kid_std = kernel_inception_distance(f_fake, f_test, seed=seed)
    kid_real, kid_real_std = kernel_inception_distance(f_ref, f_test, seed=seed)

    flat = lambda x: to_unit(x).flatten(1).double()  # noqa: E731 - images in [0, 1], 784-d
    sigma = select_parzen_sigma(flat(fake), flat(x_val), PARZEN_SIGMAS)
    ll, ll_se = parzen_log_likelihood(flat(fake), flat(x_test), sigma)
    sigma_real = select_parzen_sigma(flat(x_ref), flat(x_val), PARZEN_SIGMAS)
    ll_real, ll_real_se = parzen_log_likelihood(flat(x_ref), flat(x_test), sigma_real)

    return {
        "conditional_accuracy": {
            "value": acc,
            "n": n,
            "real_test_accuracy": acc_real,
            "n_real": len(x_test),
            "chance": 1 / NUM_CLASSES,
        },
        "frechet_distance": {
            "value": fd,
            "n_generated": n,
            "n_real": len(x_test),
            "real_vs_real": fd_real,
            "n_real_reference": n_ref,
            "features": "digit judge",
        },
        "kid": {
            "value": kid,
            "std": kid_std,
            "n_generated": n,
            "n_real": len(x_test),
            "real_vs_real": kid_real,
            "real_vs_real_std": kid_real_std,
        },
        "parzen_log_likelihood": {
            "value": ll,
            "stderr": ll_se,
            "sigma": sigma,
            "n_generated": n,
            "n_test": len(x_test),
            "n_validation": len(x_val),
            "real_baseline": ll_real,
            "real_baseline_stderr": ll_real_se,
            "real_baseline_n": n_ref,
            "paper_cgan": "132 +- 1.8 (10k samples, full MNIST)",
        },
    }


def balanced_labels(n: int) -> torch.Tensor:
    """n labels, every class equally often (n rounded down to a multiple of 10)."""
    if n < NUM_CLASSES:
        raise ValueError(f"--n must be at least {NUM_CLASSES}, got {n}")
    return torch.arange(NUM_CLASSES).repeat(n // NUM_CLASSES)


def evaluate_generator(G, n: int = 5000, seed: int = 0, weights: str = "") -> dict:
    """Generate ``n`` class-balanced digits and measure them (``ganlab evaluate cgan``)."""
    from ganlab.chapters.cgan import generate

    labels = balanced_labels(n)
    fake = generate(G, labels, seed=seed)
    return {
        "chapter": "cgan",
        "weights": weights,
        "seed": seed,
        "metrics": evaluate_images(fake, labels, seed=seed),
    }
