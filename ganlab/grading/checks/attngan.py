"""Checks for Chapter 4's assignment (AttnGAN, Xu et al. 2018).

1. ``word_attention(h, words, mask)``: every pixel's softmax over the caption's real words
   (Eq. 2), with the words already projected to the image's width.
2. ``damsm_word_similarity(words, regions, length, gamma1, gamma2)``: R(Q, D) of one caption
   and one image (Eq. 7-10, as the official code computes Eq. 10).
3. ``glu(x)``: the gated linear unit, first half * sigmoid(second half) of the channels.

Every check computes its own golden on inputs it makes up and, where a common mistake is
recognisable, names it.
"""

from __future__ import annotations

import torch

from ganlab.grading.checks.common import close, require_close
from ganlab.grading.checks.common import require_tensor as _require_tensor
from ganlab.grading.checks.common import shape as _shape
from ganlab.grading.registry import CheckFailed, Exercise, register

CHAPTER = "attngan"


def _close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-6) -> bool:
    return close(a, b, atol=atol, rtol=1e-5)


def _require_close(got: torch.Tensor, want: torch.Tensor, what: str, atol=1e-6) -> None:
    require_close(got, want, what, atol=atol, rtol=1e-5)


def _diagnose(got: torch.Tensor, hints: dict[str, torch.Tensor], atol: float = 1e-6) -> str:
    for hint, value in hints.items():
        if _close(got, value, atol):
            return f": it looks like {hint}"
    return ""


# --------------------------------------------------------------------------------------
# Exercise 1: word_attention(h, words, mask) -> (context, attention)
# --------------------------------------------------------------------------------------


def _attention_golden(h, words, mask):
    """h (B, C, H, W), words (B, C, T), mask (B, T) True at padding -> context, beta."""
    scores = torch.einsum("bchw,bct->bthw", h, words)  # (B, T, H, W)
    scores = scores.masked_fill(mask[:, :, None, None], float("-inf"))
    scores = scores.masked_fill(mask.all(1)[:, None, None, None], 0.0)  # no all -inf row
    beta = torch.softmax(scores, dim=1).masked_fill(mask[:, :, None, None], 0.0)
    return torch.einsum("bthw,bct->bchw", beta, words), beta


def _unpermuted(x):
    """(B, K, H, W) -> the same numbers laid out (B, H*W, K), then viewed as (B, K, H, W):
    what a reshape without the transpose gives."""
    return x.flatten(2).transpose(1, 2).reshape(x.shape)


def _sums_over_pixels(attention: torch.Tensor, mask: torch.Tensor) -> bool:
    """Each real word's map sums to 1 over the pixels (a softmax over the wrong axis)."""
    sums = attention.detach().nan_to_num(0.0).sum(dim=(2, 3))  # (B, T)
    return bool(torch.allclose(sums[~mask].double(), torch.ones(1, dtype=torch.float64)))


def _attention_inputs(gen, lengths, dtype=torch.float64, scale=1.0):
    b, c, height, width, t = len(lengths), 3, 4, 5, 6  # all different: transposes show
    h = (torch.randn(b, c, height, width, generator=gen, dtype=dtype) * scale).requires_grad_()
    words = torch.randn(b, c, t, generator=gen, dtype=dtype)
    mask = torch.arange(t)[None] >= torch.tensor(lengths)[:, None]  # (B, T) True at padding
    words = words.masked_fill(mask[:, None, :], 7.0)  # padding holds junk values
    return h, words.requires_grad_(), mask


def _call_attention(word_attention, h, words, mask):
    result = word_attention(h, words, mask.clone())
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed("word_attention should return two things: (context, attention)")
    context = _require_tensor(result[0], "context")
    attention = _require_tensor(result[1], "attention")
    return context, attention


def check_word_attention(word_attention) -> None:
    """Softmax over the real words for every pixel; context = weighted words; zero rows."""
    gen = torch.Generator().manual_seed(41)
    h, words, mask = _attention_inputs(gen, [6, 2, 4])
    context, attention = _call_attention(word_attention, h, words, mask)
    want_context, want_beta = _attention_golden(h, words, mask)
    where = "for h (3, 3, 4, 5) = (B, C, H, W) and words (3, 3, 6) = (B, C, T)"
    if attention.shape != want_beta.shape:
        hint = ""
        if attention.shape in ((3, 4, 5, 6), (3, 20, 6)):
            hint = (
                ": the word axis is last; put it second (permute) so that attention[b, i] "
                "is word i's map"
            )
        elif attention.shape == (3, 6, 5, 4):
            hint = ": H and W are swapped"
        raise CheckFailed(
            f"{where}, attention should have shape (B, T, H, W) = (3, 6, 4, 5), got "
            f"{_shape(attention)}{hint}"
        )
    if context.shape != want_context.shape:
        raise CheckFailed(
            f"{where}, context should have h's shape (B, C, H, W) = (3, 3, 4, 5), got "
            f"{_shape(context)}"
        )
    over_pixels_hint = (
        ": it looks like a softmax over the PIXELS for each word (each real word's map sums "
        "to 1); Eq. 2 normalises over the WORDS for each pixel (dim 1 of (B, T, H, W))"
    )
    if not torch.isfinite(attention).all():
        raise CheckFailed(
            f"{where} (no caption fully masked), attention has NaN or inf values"
            + (over_pixels_hint if _sums_over_pixels(attention, mask) else "")
        )
    if not _close(attention, want_beta):
        scores = torch.einsum("bchw,bct->bthw", h, words)
        hint = over_pixels_hint if _sums_over_pixels(attention, mask) else ""
        hint = hint or _diagnose(
            attention,
            {
                "the padding words are not masked: they take attention weight (mask their "
                "scores with -inf BEFORE the softmax)": torch.softmax(scores, dim=1),
                "the mask was applied after the softmax without renormalising, so the real "
                "words' weights no longer sum to 1 (mask with -inf BEFORE the softmax)": (
                    torch.softmax(scores, dim=1).masked_fill(mask[:, :, None, None], 0.0)
                ),
                "the (B, H*W, T) scores were reshaped to (B, T, H, W) without moving the "
                "word axis first (transpose(1, 2) before the view)": _unpermuted(want_beta),
            },
        )
        if not hint and _close(attention.sum(1), torch.ones(3, 4, 5), 1e-5):
            hint = (
                " (each pixel's weights do sum to 1; check the scores h_j . e'_i, and that "
                "masked words get -inf before the softmax)"
            )
        raise CheckFailed(
            f"{where}, attention[b, i, y, x] should be the softmax over the caption's real "
            f"words i of h[b, :, y, x] . words[b, :, i]" + (hint or "")
        )
    if _close(context, _unpermuted(want_context)):
        raise CheckFailed(
            "context: a (B, H*W, C) tensor was reshaped to (B, C, H, W) without moving the "
            "channel axis first (transpose(1, 2) before the view)"
        )
    _require_close(context, want_context, f"{where}, context = sum_i attention_i * words_i")
    if not (context.requires_grad and attention.requires_grad):
        raise CheckFailed("the outputs are detached from h and words; G learns through them")
    weights = torch.randn(context.shape, generator=gen, dtype=context.dtype)
    got_grads = torch.autograd.grad((context * weights).sum(), (h, words))
    want_grads = torch.autograd.grad((want_context * weights).sum(), (h, words))
    _require_close(got_grads[0], want_grads[0], "the gradient reaching h")
    _require_close(got_grads[1], want_grads[1], "the gradient reaching words (zero at padding)")

    # large scores: exp overflows in a hand-written softmax; torch.softmax subtracts the max
    h, words, mask = _attention_inputs(gen, [6, 3], dtype=torch.float32, scale=60.0)
    context, attention = _call_attention(word_attention, h, words, mask)
    want_context, want_beta = _attention_golden(h, words, mask)
    if not torch.isfinite(attention).all():
        raise CheckFailed(
            "with large scores (|h . e| in the hundreds) attention holds NaN or inf: exp "
            "overflows; use torch.softmax, which subtracts the maximum first"
        )
    _require_close(attention, want_beta, "attention for large scores", atol=1e-4)

    # a caption whose every word is masked: zeros, not NaN
    h, words, mask = _attention_inputs(gen, [5, 0, 2])
    context, attention = _call_attention(word_attention, h, words, mask)
    if not (torch.isfinite(attention).all() and torch.isfinite(context).all()):
        raise CheckFailed(
            "caption 1 of 3 has no real word (its mask row is all True): its attention and "
            "context should be all zeros, got NaN (a softmax of all -inf is 0/0). Give such "
            "rows finite scores before the softmax and zero them after"
        )
    want_context, want_beta = _attention_golden(h, words, mask)
    _require_close(attention[1], want_beta[1], "attention of the fully masked caption (zeros)")
    _require_close(context[1], want_context[1], "context of the fully masked caption (zeros)")
    _require_close(attention, want_beta, "attention with a fully masked caption in the batch")
    (context.sum() + attention.sum()).backward()
    if not (torch.isfinite(h.grad).all() and torch.isfinite(words.grad).all()):
        raise CheckFailed(
            "with a fully masked caption the forward pass is fine but the gradients hold NaN; "
            "replace the all -inf scores by finite ones BEFORE the softmax (e.g. with "
            "masked_fill), not its NaN output afterwards"
        )


register(
    Exercise(
        chapter=CHAPTER,
        id="1",
        title="word attention",
        points=2,
        names=("word_attention",),
        check=check_word_attention,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 2: damsm_word_similarity(words, regions, length, gamma1, gamma2) -> R(Q, D)
# --------------------------------------------------------------------------------------


def _cos(c, e):
    """Column-wise cosine of (D, L) and (D, L) -> (L,), the official eps on the product."""
    return (c * e).sum(0) / (c.norm(dim=0) * e.norm(dim=0)).clamp_min(1e-8)


def _relevance(words, regions, length, gamma1, gamma2, *, eq8_dim=0, eq9_dim=1, cosine=True):
    """R(Q, D) for one pair; the keyword arguments build the wrong variants."""
    e = words[:, :length]  # (D, L) the real words
    s = e.T @ regions  # Eq. 7: (L, R)
    s_bar = torch.softmax(s, dim=eq8_dim)  # Eq. 8: over the words, for each region
    alpha = torch.softmax(gamma1 * s_bar, dim=eq9_dim)  # Eq. 9: over the regions, per word
    c = regions @ alpha.T  # (D, L) region context per word
    r = _cos(c, e) if cosine else (c * e).sum(0)
    return torch.logsumexp(gamma2 * r, dim=0)  # Eq. 10 (official: no 1/gamma2 power)


def check_damsm_word_similarity(damsm_word_similarity) -> None:
    """R(Q, D) = log sum_i exp(gamma2 cos(c_i, e_i)) over the real words."""
    gen = torch.Generator().manual_seed(42)
    d, t, n = 5, 7, 6
    for length, gamma1, gamma2 in ((4, 4.0, 5.0), (6, 1.5, 2.0), (7, 10.0, 1.0)):
        words = torch.randn(d, t, generator=gen, dtype=torch.float64) * 0.8
        words[:, length:] = torch.randn(d, t - length, generator=gen, dtype=torch.float64) * 5
        regions = torch.randn(d, n, generator=gen, dtype=torch.float64) * 0.8
        words.requires_grad_()
        regions.requires_grad_()
        got = _require_tensor(
            damsm_word_similarity(words, regions, length, gamma1, gamma2),
            "damsm_word_similarity(...)",
        )
        if got.numel() != 1:
            raise CheckFailed(
                f"expected one number R(Q, D) (a scalar tensor), got shape {_shape(got)}: sum "
                "exp(gamma2 * cos) over the words, then take the log"
            )
        got = got.reshape(())
        want = _relevance(words, regions, length, gamma1, gamma2)
        where = (
            f"for words (5, 7) with length {length}, regions (5, 6), gamma1 = {gamma1}, "
            f"gamma2 = {gamma2}"
        )
        if not torch.isfinite(got):
            raise CheckFailed(f"{where}, expected {want.item():.6f}, got {got.item()}")
        if not _close(got, want):
            args = (words, regions, length, gamma1, gamma2)
            everything = (words, regions, t, gamma1, gamma2)
            real = words[:, :length]
            hint = _diagnose(
                got,
                {
                    "gamma1 is missing: Eq. 9 sharpens gamma1 * s_bar before the softmax over "
                    "regions": _relevance(words, regions, length, 1.0, gamma2),
                    "gamma2 is missing: Eq. 10 sums exp(gamma2 * cos)": _relevance(
                        words, regions, length, gamma1, 1.0
                    ),
                    "the first softmax (Eq. 8) runs over the regions; it normalises over the "
                    "WORDS for each region": _relevance(*args, eq8_dim=1),
                    "the second softmax (Eq. 9) runs over the words; it is over the REGIONS "
                    "for each word": _relevance(*args, eq9_dim=0),
                    "both softmaxes run over the regions; Eq. 8 is over the words": (
                        _relevance(*args, eq8_dim=1, eq9_dim=1)
                    ),
                    "the padding words count: keep only the first `length` words": _relevance(
                        *everything
                    ),
                    "a dot product instead of the cosine similarity of c_i and e_i": (
                        _relevance(*args, cosine=False)
                    ),
                    "the paper's power 1/gamma2 was applied; the official code (and this "
                    "course) uses log sum exp(gamma2 cos) without it": want / gamma2,
                    "a mean over the words instead of the sum inside the log": (
                        want - torch.log(torch.tensor(float(length), dtype=want.dtype))
                    ),
                    "the sum of cosines, not log sum exp(gamma2 * cos)": _cos(
                        regions @ torch.softmax(gamma1 * torch.softmax(real.T @ regions, 0), 1).T,
                        real,
                    ).sum(),
                },
            )
            raise CheckFailed(
                f"{where}, expected R(Q, D) = {want.item():.6f}, got {got.item():.6f}" + hint
            )
        if not got.requires_grad:
            raise CheckFailed("R(Q, D) is detached from words and regions; DAMSM learns through it")
        g_words, g_regions = torch.autograd.grad(got, (words, regions))
        w_words, w_regions = torch.autograd.grad(want, (words, regions))
        _require_close(g_words, w_words, "the gradient reaching words (zero at padding)")
        _require_close(g_regions, w_regions, "the gradient reaching regions")


register(
    Exercise(
        chapter=CHAPTER,
        id="2",
        title="DAMSM word-level similarity",
        points=2,
        names=("damsm_word_similarity",),
        check=check_damsm_word_similarity,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 3: glu(x)
# --------------------------------------------------------------------------------------


def check_glu(glu) -> None:
    """(B, 2C, ...) -> first half * sigmoid(second half), split on the channel axis."""
    gen = torch.Generator().manual_seed(43)
    for shape in ((4, 6, 2, 8), (3, 10)):
        for dtype in (torch.float32, torch.float64):
            x = (torch.randn(shape, generator=gen, dtype=dtype) * 2).requires_grad_()
            got = _require_tensor(glu(x), f"glu(x) for x of shape {shape}")
            c = shape[1] // 2
            a, b = x[:, :c], x[:, c:]
            want = a * torch.sigmoid(b)
            where = f"for x of shape {shape}"
            if got.shape != want.shape:
                raise CheckFailed(
                    f"{where}, expected shape {_shape(want)} (the channels, dim 1, halved), "
                    f"got {_shape(got)}: split on dim 1, the channel axis"
                )
            if got.dtype != dtype:
                raise CheckFailed(f"{where} of dtype {dtype}, expected that dtype, got {got.dtype}")
            if not _close(got, want):
                hint = _diagnose(
                    got,
                    {
                        "the halves are swapped: the FIRST half is the value, the SECOND the "
                        "gate (x[:, :C] * sigmoid(x[:, C:]))": b * torch.sigmoid(a),
                        "tanh instead of sigmoid: the gate lies in (0, 1)": a * torch.tanh(b),
                        "the gate is not squashed: a * sigmoid(b), not a * b": a * b,
                        "sigmoid on both halves": torch.sigmoid(a) * torch.sigmoid(b),
                    },
                )
                raise CheckFailed(
                    f"{where}, expected x[:, :C] * sigmoid(x[:, C:]) with C = {c}" + hint
                )
            if not got.requires_grad:
                raise CheckFailed("glu's output is detached from x")
            weights = torch.randn(got.shape, generator=gen, dtype=dtype)
            (grad,) = torch.autograd.grad((got * weights).sum(), x)
            (want_grad,) = torch.autograd.grad((want * weights).sum(), x)
            _require_close(grad, want_grad, "the gradient reaching x")


register(
    Exercise(
        chapter=CHAPTER,
        id="3",
        title="the gated linear unit",
        points=2,
        names=("glu",),
        check=check_glu,
    )
)
