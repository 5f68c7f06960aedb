"""Checks for Chapter 3's assignment (StackGAN, Zhang et al. 2017).

1. ``conditioning_augmentation(fc_out, eps)``: split, reparameterise, KL; also with eps of
   shape (B, K, C), K samples per caption.
2. ``ResidualBlock(in_channels, out_channels=None)``: Stage-II's residual block, with the
   attribute names of :data:`RESIDUAL_BLOCK_KEYS`, generalised to change the width with a
   projection shortcut (:data:`SHORTCUT_KEYS`); the check loads state dicts with those names.
3. ``train_step(G, D, opt_g, opt_d, x, t, z)``: one Stage-I step, D (matching-aware, on
   G's CA mean, detached) then G (non-saturating, plus the KL on the per-dimension scale),
   compared with :func:`reference_train_step` on small fixed models.
4. ``ca_diversity_ratio``: a number read from the lecture, the pixel diversity of the
   shipped Stage-I with conditioning augmentation over that of the one trained without it.

The checks of 1-3 compute their own goldens with ``torch.nn.functional`` on inputs they make
up and, where a common mistake is recognisable, name it; that of 4 reads the two shipped
models' manifests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.grading.checks.common import close, require_close
from ganlab.grading.checks.common import require_tensor as _require_tensor
from ganlab.grading.checks.common import shape as _shape
from ganlab.grading.registry import CheckFailed, Exercise, register

CHAPTER = "stackgan"


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> bool:
    return close(a, b, atol=atol, rtol=1e-5)


def _require_close(got: torch.Tensor, want: torch.Tensor, what: str, atol=1e-6) -> None:
    require_close(got, want, what, atol=atol, rtol=1e-5)


def _diagnose(got: torch.Tensor, hints: dict[str, torch.Tensor]) -> str:
    for hint, value in hints.items():
        if _close(got, value):
            return f": it looks like {hint}"
    return ""


# --------------------------------------------------------------------------------------
# Exercise 1: conditioning_augmentation(fc_out, eps) -> (c, mu, logvar, kl)
# --------------------------------------------------------------------------------------


def _kl_terms(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return 0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar)  # (B, c), each >= 0


def check_conditioning_augmentation(conditioning_augmentation) -> None:
    """mu = first half, logvar = second half, c = mu + exp(logvar/2) * eps, KL sum/mean."""
    gen = torch.Generator().manual_seed(31)
    for batch, c_dim in ((5, 4), (3, 7)):
        fc_out = torch.randn(batch, 2 * c_dim, generator=gen, dtype=torch.float64) * 0.8
        fc_out.requires_grad_()
        eps = torch.randn(batch, c_dim, generator=gen, dtype=torch.float64)
        result = conditioning_augmentation(fc_out, eps.clone())
        if not (isinstance(result, tuple | list) and len(result) == 4):
            raise CheckFailed(
                "conditioning_augmentation should return four things: (c, mu, logvar, kl)"
            )
        c, mu, logvar, kl = (
            _require_tensor(v, n) for v, n in zip(result, ("c", "mu", "logvar", "kl"))
        )
        want_mu, want_logvar = fc_out[:, :c_dim], fc_out[:, c_dim:]
        where = f"for fc_out of shape ({batch}, {2 * c_dim})"
        if mu.shape != (batch, c_dim) or logvar.shape != (batch, c_dim):
            raise CheckFailed(
                f"{where}, mu and logvar should each be ({batch}, {c_dim}) (the two halves of "
                f"fc_out's columns), got {_shape(mu)} and {_shape(logvar)}"
            )
        if _close(mu, want_logvar) and _close(logvar, want_mu):
            raise CheckFailed(
                "mu and logvar are swapped: mu is the FIRST c_dim columns of fc_out, logvar "
                "the NEXT c_dim"
            )
        _require_close(mu, want_mu, f"{where}, mu (the first {c_dim} columns)")
        _require_close(logvar, want_logvar, f"{where}, logvar (the last {c_dim} columns)")

        # c: the reparameterisation trick
        sigma = torch.exp(0.5 * want_logvar)
        want_c = want_mu + sigma * eps
        if not _close(c, want_c):
            hint = _diagnose(
                c,
                {
                    "exp(logvar) was used as sigma; exp(logvar) is the VARIANCE, the standard "
                    "deviation is exp(logvar / 2)": want_mu + torch.exp(want_logvar) * eps,
                    "c = mu: the sample is missing (c = mu + sigma * eps)": want_mu,
                    "logvar was used as sigma; sigma = exp(logvar / 2)": (
                        want_mu + want_logvar * eps
                    ),
                    "eps is missing: c = mu + sigma * eps": want_mu + sigma,
                    "mu and logvar are swapped in c": want_logvar + torch.exp(0.5 * want_mu) * eps,
                },
            )
            raise CheckFailed(
                f"{where}, c is not the reparameterised sample of the exercise's formula"
                + (hint or " (use the eps argument; do not draw a new one)")
            )

        # kl: sum over the c dims, mean over the batch
        terms = _kl_terms(want_mu, want_logvar)
        want_kl = terms.sum(1).mean()
        if kl.numel() != 1:
            raise CheckFailed(
                f"kl should be one number (a scalar tensor), got shape {_shape(kl)}: sum over "
                "the c dims, then average over the batch"
            )
        kl = kl.reshape(())
        if not _close(kl, want_kl):
            var_as_sigma = 0.5 * (torch.exp(2 * want_logvar) + want_mu**2 - 1 - 2 * want_logvar)
            hint = _diagnose(
                kl,
                {
                    "the sign is flipped: KL >= 0 and G MINIMISES it": -want_kl,
                    "the mean over ALL elements (the official code's reduction); this exercise "
                    "sums over the c dims and averages over the batch": terms.mean(),
                    "the sum over everything; average over the batch": terms.sum(),
                    "the mean over the c dims, summed over the batch": terms.mean(1).sum(),
                    "the factor 1/2 is missing": 2 * want_kl,
                    "exp(logvar) was taken as sigma, so sigma^2 = exp(2 logvar)": (
                        var_as_sigma.sum(1).mean()
                    ),
                },
            )
            raise CheckFailed(
                f"{where}, expected kl = {want_kl.item():.6f} = mean over the batch of "
                f"0.5 * sum_j (exp(logvar_j) + mu_j^2 - 1 - logvar_j), got {kl.item():.6f}" + hint
            )

        # gradients: c must reach mu AND logvar; kl must reach both too
        if not c.requires_grad or not kl.requires_grad:
            raise CheckFailed(
                "c and kl must stay connected to fc_out through autograd (nothing detached or "
                "turned into plain numbers); the CA's FC learns through them"
            )
        weights = torch.randn(batch, c_dim, generator=gen, dtype=torch.float64)
        (grad,) = torch.autograd.grad((c * weights).sum(), fc_out)
        if grad[:, c_dim:].abs().max() == 0:
            raise CheckFailed(
                "no gradient reaches logvar through c: sigma * eps must stay in the graph "
                "(the reparameterisation trick is what lets sigma learn)"
            )
        _require_close(grad[:, :c_dim], weights, "the gradient of c reaching mu")
        _require_close(
            grad[:, c_dim:],
            0.5 * sigma.detach() * eps * weights,
            "the gradient of c reaching logvar",
        )
        (grad,) = torch.autograd.grad(kl, fc_out)
        _require_close(grad[:, :c_dim], want_mu.detach() / batch, "d kl / d mu")
        _require_close(
            grad[:, c_dim:], 0.5 * (want_logvar.detach().exp() - 1) / batch, "d kl / d logvar"
        )
    for batch, samples, c_dim in ((3, 3, 4), (2, 5, 3)):
        _check_many_samples(conditioning_augmentation, batch, samples, c_dim, gen)


def _check_many_samples(conditioning_augmentation, batch, samples, c_dim, gen) -> None:
    """eps of shape (B, K, C): K samples per caption, c (B, K, C), mu/logvar/kl as before.
    B == K first: there the (B, C) formula broadcasts without an error, to the wrong rows."""
    fc_out = torch.randn(batch, 2 * c_dim, generator=gen, dtype=torch.float64) * 0.8
    fc_out.requires_grad_()
    eps = torch.randn(batch, samples, c_dim, generator=gen, dtype=torch.float64)
    where = f"with eps of shape ({batch}, {samples}, {c_dim}) ({samples} samples per caption)"
    try:
        result = conditioning_augmentation(fc_out, eps.clone())
    except RuntimeError as error:
        raise CheckFailed(
            f"{where}, your function raised {type(error).__name__}: {error}. mu and sigma, "
            "(B, C), belong to eps's FIRST axis (the caption), not to its K axis"
        ) from None
    if not (isinstance(result, tuple | list) and len(result) == 4):
        raise CheckFailed(
            "conditioning_augmentation should return four things: (c, mu, logvar, kl)"
        )
    c, mu, logvar, kl = (_require_tensor(v, n) for v, n in zip(result, ("c", "mu", "logvar", "kl")))
    want_mu, want_logvar = fc_out[:, :c_dim], fc_out[:, c_dim:]
    sigma = torch.exp(0.5 * want_logvar)
    if c.shape != eps.shape:
        raise CheckFailed(
            f"{where}, c should have eps's shape {tuple(eps.shape)}, one sample per entry of "
            f"eps, got {_shape(c)}"
        )
    want_c = want_mu[:, None] + sigma[:, None] * eps
    if not _close(c, want_c):
        hint = _diagnose(
            c,
            {
                "mu and sigma were lined up with eps's K axis: the (B, C) formula broadcasts "
                "them against the LAST two axes of (B, K, C), so sample k of caption b used "
                "caption k's mu and sigma": want_mu + sigma * eps,
                "sigma was lined up with eps's K axis (mu is right)": (
                    want_mu[:, None] + sigma * eps
                ),
                "mu was lined up with eps's K axis (sigma is right)": (
                    want_mu + sigma[:, None] * eps
                ),
                "every sample repeats the first one": (want_mu + sigma * eps[:, 0])[
                    :, None
                ].expand_as(eps),
            },
        )
        raise CheckFailed(
            f"{where}, c[b, k] should be mu[b] + sigma[b] * eps[b, k]"
            + (hint or " (the same formula, for every sample k of caption b)")
        )
    _require_close(mu, want_mu, f"{where}, mu (still ({batch}, {c_dim}), one per caption)")
    _require_close(logvar, want_logvar, f"{where}, logvar (still one per caption)")
    want_kl = _kl_terms(want_mu, want_logvar).sum(1).mean()
    if kl.numel() != 1:
        raise CheckFailed(f"{where}, kl should still be one number, got shape {_shape(kl)}")
    if not _close(kl.reshape(()), want_kl):
        hint = _diagnose(
            kl.reshape(()),
            {
                f"the KL was summed over the {samples} samples; it is a property of each "
                "caption's Gaussian, not of how many samples are drawn from it": samples * want_kl,
            },
        )
        raise CheckFailed(
            f"{where}, kl should not change with the number of samples: expected "
            f"{want_kl.item():.6f}, got {kl.reshape(()).item():.6f}" + hint
        )
    weights = torch.randn(eps.shape, generator=gen, dtype=torch.float64)
    (grad,) = torch.autograd.grad((c * weights).sum(), fc_out)
    _require_close(grad[:, :c_dim], weights.sum(1), f"{where}, the gradient of c reaching mu")


register(
    Exercise(
        chapter=CHAPTER,
        id="1",
        title="conditioning augmentation",
        points=2,
        names=("conditioning_augmentation",),
        check=check_conditioning_augmentation,
        hints=(
            "Slice fc_out's columns in two; the second half is a log-variance, not a sigma.",
            "The KL is a sum over the C dimensions of each caption, then a mean over captions.",
            "With eps (B, K, C), give mu and sigma a K axis of size 1 (at position 1) before "
            "the product; PyTorch broadcasts from the LAST axis.",
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 2: ResidualBlock(in_channels, out_channels=None)
# --------------------------------------------------------------------------------------

_BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
RESIDUAL_BLOCK_KEYS = (
    "conv1.weight",
    *(f"bn1.{k}" for k in _BN_KEYS),
    "conv2.weight",
    *(f"bn2.{k}" for k in _BN_KEYS),
)
"""The state-dict names the exercise asks for: ``conv1`` (3x3, no bias), ``bn1``, ``conv2``,
``bn2`` (``nn.BatchNorm2d``)."""

SHORTCUT_KEYS = ("shortcut_conv.weight", *(f"shortcut_bn.{k}" for k in _BN_KEYS))
"""The projection shortcut's names, present only when the block changes the width:
``shortcut_conv`` (1x1, no bias) and ``shortcut_bn``."""

BLOCK_WIDTHS = ((3, None), (5, None), (3, 5), (6, 4))
"""(in_channels, out_channels) the check builds: same width first (the official block, with
``ResidualBlock(channels)``), then widening and narrowing (the projection shortcut)."""


def _reference_state(c_in: int, c_out: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random weights and BN statistics, so that every piece changes the output."""

    def bn(name: str) -> None:
        state[f"{name}.weight"] = 1 + 0.3 * torch.randn(c_out, generator=gen)
        state[f"{name}.bias"] = 0.3 * torch.randn(c_out, generator=gen)
        state[f"{name}.running_mean"] = 0.5 * torch.randn(c_out, generator=gen)
        state[f"{name}.running_var"] = 0.5 + torch.rand(c_out, generator=gen)
        state[f"{name}.num_batches_tracked"] = torch.tensor(10)

    state: dict[str, torch.Tensor] = {}
    state["conv1.weight"] = torch.randn(c_out, c_in, 3, 3, generator=gen) * 0.3
    bn("bn1")
    state["conv2.weight"] = torch.randn(c_out, c_out, 3, 3, generator=gen) * 0.3
    bn("bn2")
    if c_in != c_out:
        state["shortcut_conv.weight"] = torch.randn(c_out, c_in, 1, 1, generator=gen) * 0.5
        bn("shortcut_bn")
    return state


def _block_variants(x, s, training: bool) -> dict[str, torch.Tensor]:
    """The right forward and plausible wrong ones, from the state dict ``s``."""

    def conv(h, name):
        weight = s[f"{name}.weight"]
        return F.conv2d(h, weight, padding=weight.shape[-1] // 2)

    def bn(h, name):
        return F.batch_norm(
            h,
            s[f"{name}.running_mean"].clone(),
            s[f"{name}.running_var"].clone(),
            s[f"{name}.weight"],
            s[f"{name}.bias"],
            training=training,
        )

    h1 = F.relu(bn(conv(x, "conv1"), "bn1"))
    branch = bn(conv(h1, "conv2"), "bn2")
    projected = "shortcut_conv.weight" in s
    skip = bn(conv(x, "shortcut_conv"), "shortcut_bn") if projected else x
    variants = {
        "right": F.relu(branch + skip),
        "the skip connection is missing (add the input x before the last ReLU)": F.relu(branch),
        "a ReLU is applied to the branch BEFORE the add; the official block adds first, "
        "then applies ReLU": F.relu(branch) + skip,
        "the branch gets a ReLU before the add AND after it; apply ReLU only after the add": (
            F.relu(F.relu(branch) + skip)
        ),
        "the final ReLU is missing (relu(branch + x))": branch + skip,
        "the ReLU between the two convs is missing": F.relu(
            bn(conv(bn(conv(x, "conv1"), "bn1"), "conv2"), "bn2") + skip
        ),
        "bn1 is not applied": F.relu(bn(conv(F.relu(conv(x, "conv1")), "conv2"), "bn2") + skip),
        "bn2 is not applied": F.relu(conv(h1, "conv2") + skip),
    }
    if projected:
        variants |= {
            "the shortcut's BatchNorm (shortcut_bn) is not applied": F.relu(
                branch + conv(x, "shortcut_conv")
            ),
            "the shortcut has a ReLU; it is linear (conv, BN), and the one ReLU comes after "
            "the add": F.relu(branch + F.relu(skip)),
        }
    return variants


def _build(ResidualBlock, c_in: int, c_out: int | None):  # noqa: N803 (the student's class)
    """``ResidualBlock(c_in)`` for the same width, ``ResidualBlock(c_in, c_out)`` otherwise."""
    try:
        return ResidualBlock(c_in) if c_out is None else ResidualBlock(c_in, c_out)
    except TypeError as error:
        if c_out is None:
            raise
        raise CheckFailed(
            f"ResidualBlock({c_in}, {c_out}) failed ({error}): the block takes "
            "(in_channels, out_channels=None), and changes the width when out_channels differs"
        ) from None


def _require_layer_names(block, c_in: int, c_out: int) -> None:
    keys = set(block.state_dict())
    want = set(RESIDUAL_BLOCK_KEYS) | (set(SHORTCUT_KEYS) if c_in != c_out else set())
    missing = sorted(want - keys, key=[*RESIDUAL_BLOCK_KEYS, *SHORTCUT_KEYS].index)
    extra = sorted(keys - want)
    if not (missing or extra):
        return
    hints = []
    if any(k.endswith(".bias") and "conv" in k for k in extra):
        hints.append(
            "the convs have no bias (bias=False): the BatchNorm after each one has its own shift"
        )
    if any(k.startswith("bn") for k in missing):
        hints.append("each conv is followed by its own BatchNorm (bn1, bn2)")
    if c_in == c_out and any(k.startswith("shortcut") for k in extra):
        hints.append(
            "when the width does not change, the skip is x itself: the block has no shortcut "
            "layers (the official block)"
        )
    if c_in != c_out and "shortcut_bn.weight" in missing and "shortcut_conv.weight" in keys:
        hints.append("the shortcut's 1x1 conv is followed by its own BatchNorm (shortcut_bn)")
    width = f"from {c_in} to {c_out} channels" if c_in != c_out else f"at {c_in} channels"
    raise CheckFailed(
        f"ResidualBlock {width} should have exactly the layers named in the exercise; "
        f"missing {missing or 'nothing'}, unexpected {extra or 'nothing'}"
        + ("; " + "; ".join(hints) if hints else "")
    )


def check_residual_block(ResidualBlock) -> None:  # noqa: N803 (the student's class name)
    """Exact state-dict names, then the forward against a functional reference, at the same
    width (identity skip) and at a changed one (projection shortcut)."""
    if not (isinstance(ResidualBlock, type) and issubclass(ResidualBlock, nn.Module)):
        raise CheckFailed("ResidualBlock should be a class that subclasses torch.nn.Module")
    gen = torch.Generator().manual_seed(32)
    for c_in, out_channels in BLOCK_WIDTHS:
        c_out = c_in if out_channels is None else out_channels
        block = _build(ResidualBlock, c_in, out_channels)
        _require_layer_names(block, c_in, c_out)
        state = _reference_state(c_in, c_out, gen)
        try:
            block.load_state_dict(state, strict=True)
        except RuntimeError as error:
            shortcut = "; the shortcut is a 1x1 conv" if c_in != c_out else ""
            raise CheckFailed(
                f"could not load weights for {c_in} -> {c_out} channels: conv1 should be a 3x3 "
                f"conv from {c_in} to {c_out} channels and conv2 one from {c_out} to {c_out}"
                f"{shortcut}. ({error})"
            ) from None
        x = torch.randn(4, c_in, 6, 6, generator=gen)
        for training in (True, False):
            block.load_state_dict(state)  # train mode moves the running stats: start afresh
            block.train(training)
            with torch.no_grad():
                out = _require_tensor(block(x.clone()), "ResidualBlock(...)(x)")
            variants = _block_variants(x, state, training)
            mode = "train" if training else "eval"
            want_shape = (4, c_out, 6, 6)
            if tuple(out.shape) != want_shape:
                raise CheckFailed(
                    f"the block from {c_in} to {c_out} channels should map {tuple(x.shape)} to "
                    f"{want_shape}, got {_shape(out)} (padding=1 keeps H and W)"
                )
            if not _close(out, variants.pop("right"), atol=1e-4):
                hint = next(
                    (k for k, v in variants.items() if _close(out, v, atol=1e-4)),
                    None,
                )
                raise CheckFailed(
                    f"in {mode} mode, from {c_in} to {c_out} channels, the output differs from "
                    "the exercise's block, loaded with the same weights"
                    + (f": it looks like {hint}" if hint else "")
                )
        block.train()
        x = torch.randn(2, c_in, 5, 5, generator=gen, requires_grad=True)
        out = block(x)
        if not out.requires_grad:
            raise CheckFailed("the output is detached: gradients should reach the parameters")
        out.square().sum().backward()
        if x.grad is None or any(p.grad is None for p in block.parameters()):
            raise CheckFailed("gradients should reach the input and every parameter")


register(
    Exercise(
        chapter=CHAPTER,
        id="2",
        title="the residual block",
        points=2,
        names=("ResidualBlock",),
        check=check_residual_block,
        hints=(
            "Read the formula from the inside out: each layer in __init__, in that order.",
            "One ReLU sits inside the branch, the other after the addition of the skip.",
            "Only conv1 changes the width; the skip must then change it too, as a linear map "
            "(a 1x1 conv and its BatchNorm), created only when the widths differ.",
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 3: train_step(G, D, opt_g, opt_d, x, t, z) -> (loss_d, loss_g), a Stage-I step
# (it replaces the matching-aware loss, which chapter 2's assignment already asks for)
# --------------------------------------------------------------------------------------

C_DIM_STEP = 4  # the small G's condition size
KL_WEIGHT_STEP = 2.0  # the official weight on the per-dimension KL (M.KL_WEIGHT)


class _StepG(nn.Module):
    """A small Stage-I G: t (N, 6), z (N, 3) -> (image (N, 1, 4, 4), mu, logvar (N, 4)).

    Its CA noise is a fixed buffer, so that calling it twice gives the same outputs."""

    def __init__(self, counter):
        super().__init__()
        self.counter = counter
        self.ca = nn.Linear(6, 2 * C_DIM_STEP)
        self.net = nn.Linear(3 + C_DIM_STEP, 16)
        self.register_buffer("eps", torch.randn(16, C_DIM_STEP, dtype=torch.float64))

    def forward(self, t, z):
        mu, logvar = F.leaky_relu(self.ca(t), 0.2).chunk(2, dim=1)
        c = mu + torch.exp(0.5 * logvar) * self.eps[: len(t)]
        image = torch.tanh(self.net(torch.cat([z, c], dim=1))).view(-1, 1, 4, 4)
        return self.counter.watch((image, mu, logvar))


class _StepD(nn.Module):
    """A small Stage-I D with the course's interface: D(x, cond) -> logits (N,); with
    ``wrong=True`` also the (N-1,) logits of image i with the condition of i + 1."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16 + C_DIM_STEP, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))

    def logits(self, x, cond):
        return self.net(torch.cat([x.flatten(1), cond], dim=1)).squeeze(1)

    def forward(self, x, cond, wrong=False):
        out = self.logits(x, cond)
        return (out, self.logits(x[:-1], cond[1:])) if wrong else out


def _stackgan_case(size: int, seed: int):
    from ganlab.grading.checks.common import GradientCounter

    gen = torch.Generator().manual_seed(seed)
    counter = GradientCounter()
    G, D = _StepG(counter).double(), _StepD().double()
    with torch.no_grad():
        for p in [*G.parameters(), *D.parameters(), G.eps]:
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.1, momentum=0.5)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.5)
    calls = []
    for _ in range(2):
        x = torch.tanh(torch.randn(size, 1, 4, 4, generator=gen, dtype=torch.float64))
        t = torch.randn(size, 6, generator=gen, dtype=torch.float64)
        z = torch.randn(size, 3, generator=gen, dtype=torch.float64)
        calls.append((G, D, opt_g, opt_d, x, t, z))
    return {"G": G, "D": D}, calls, counter


def reference_train_step(G, D, opt_g, opt_d, x, t, z):
    """One Stage-I step: D matching-aware on G's CA mean (detached), then G non-saturating
    plus 2.0 times the per-dimension KL. Returns the two losses as floats."""
    fake, mu, logvar = G(t, z)
    cond = mu.detach()
    real_logits, wrong_logits = D(x, cond, wrong=True)
    fake_logits = D(fake.detach(), cond)
    loss_d = (
        F.softplus(-real_logits).mean()
        + (F.softplus(wrong_logits).mean() + F.softplus(fake_logits).mean()) / 2
    )
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    kl = (0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar)).sum(dim=1).mean()
    loss_g = F.softplus(-D(fake, cond)).mean() + KL_WEIGHT_STEP * kl / mu.shape[1]
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def check_train_step(train_step) -> None:
    """Two steps on small fixed models, two batch sizes: parameters and losses as the
    reference's; no gradient from D's loss into G (through the image or through mu)."""
    from ganlab.grading.checks.common import compare_training_steps

    compare_training_steps(train_step, reference_train_step, _stackgan_case)


register(
    Exercise(
        chapter=CHAPTER,
        id="3",
        title="a Stage-I training step",
        points=3,
        names=("train_step",),
        check=check_train_step,
        hints=(
            "D's condition is G's CA mean; D must not train G's CA through it.",
            "The KL belongs to G's loss only, on the per-dimension scale of the official code.",
            "Every backward adds to the gradients already there; D is updated first.",
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 4: read a result — how much more varied CA makes Stage-I
# --------------------------------------------------------------------------------------


def measured_diversity_ratio() -> float:
    """Pixel diversity of the shipped Stage-I with CA over that without, as measured when
    the two were shipped (50 test captions x 16 samples; the lecture re-measures them)."""
    from ganlab.chapters import stackgan as chapter
    from ganlab.weights import shipped

    with_ca = chapter.load_generator(stage=1)[1]["manifest"]["metrics"]["diversity"]
    no_ca = chapter.load_generator(shipped(chapter.SHIPPED_NO_CA))[1]["manifest"]["metrics"]
    return with_ca["pixels"] / no_ca["diversity"]["pixels"]


def check_diversity_ratio(ca_diversity_ratio) -> None:
    """The ratio, within 0.05."""
    from ganlab.grading.checks.common import require_number

    want = measured_diversity_ratio()
    require_number(
        ca_diversity_ratio, "ca_diversity_ratio", want, 0.05,
        "It is the pixel diversity of Stage-I WITH conditioning augmentation divided by that "
        "of the Stage-I trained WITHOUT it (a ratio, so above 1 if CA adds variety), from "
        "the lecture's ablation table",
    )  # fmt: skip


register(
    Exercise(
        chapter=CHAPTER,
        id="4",
        title="reading the CA ablation",
        points=1,
        names=("ca_diversity_ratio",),
        check=check_diversity_ratio,
        hints=(
            "Section 8 of the lecture (Conditioning Augmentation: more varied birds?) prints "
            "both models' diversity in pixels; the judge-feature column is another measure.",
        ),
    )
)
