"""AttnGAN's word attention against a pixel-by-pixel loop of Eq. 2; masking; the GLU."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganlab.nn.attention import WordAttention, padding_mask, word_attention
from ganlab.nn.glu import GLU, glu


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def _loop_attention(h, words, lengths):
    """Eq. 2 for one image: h (C, H, W), words (C, T) projected, only the first
    ``lengths`` words real -> context (C, H, W), beta (T, H, W), with python floats."""
    C, H, W = h.shape
    context, beta = torch.zeros(C, H, W), torch.zeros(words.shape[1], H, W)
    for y in range(H):
        for x in range(W):
            s = [sum(h[c, y, x].item() * words[c, i].item() for c in range(C))
                 for i in range(lengths)]  # fmt: skip
            z = sum(math.exp(v) for v in s)
            for i in range(lengths):
                beta[i, y, x] = math.exp(s[i]) / z
                context[:, y, x] += beta[i, y, x] * words[:, i]
    return context, beta


def _inputs(seed, b=3, c=4, t=5, size=(3, 2)):
    gen = torch.Generator().manual_seed(seed)
    h = torch.randn(b, c, *size, generator=gen)
    words = torch.randn(b, c, t, generator=gen)
    return h, words


def test_word_attention_matches_the_loop_and_masks_each_caption_its_own_padding():
    h, words = _inputs(0)
    lengths = torch.tensor([5, 2, 3])  # different per caption: catches a mis-laid mask
    context, attn = word_attention(h, words, padding_mask(lengths, 5))
    assert context.shape == (3, 4, 3, 2) and attn.shape == (3, 5, 3, 2)
    for b in range(3):
        want_c, want_a = _loop_attention(h[b], words[b], int(lengths[b]))
        assert torch.allclose(context[b], want_c, atol=1e-5)
        assert torch.allclose(attn[b], want_a, atol=1e-6)
    assert torch.allclose(attn.sum(1), torch.ones(3, 3, 2))  # each pixel: weights sum to 1


def test_no_mask_is_the_plain_softmax_over_words():
    h, words = _inputs(1)
    context, attn = word_attention(h, words)
    scores = torch.einsum("bchw,bct->bthw", h, words)
    want = torch.softmax(scores, dim=1)
    assert torch.allclose(attn, want, atol=1e-6)
    assert torch.allclose(context, torch.einsum("bthw,bct->bchw", want, words), atol=1e-5)
    none_masked = torch.zeros(3, 5, dtype=torch.bool)
    assert torch.allclose(word_attention(h, words, none_masked)[1], attn)


def test_padding_words_change_nothing():
    h, words = _inputs(2)
    mask = padding_mask(torch.tensor([5, 2, 3]), 5)
    context, attn = word_attention(h, words, mask)
    garbage = words.clone()
    garbage[1, :, 2:] = 1e4
    garbage[2, :, 3:] = -1e4
    context2, attn2 = word_attention(h, garbage, mask)
    assert torch.equal(attn, attn2) and torch.allclose(context, context2)
    assert (attn[1, 2:] == 0).all() and (attn[2, 3:] == 0).all()


@pytest.mark.filterwarnings("ignore:Anomaly Detection has been enabled")
def test_fully_masked_caption_gives_zeros_not_nan():
    h, words = _inputs(3)
    h.requires_grad_()
    words.requires_grad_()
    mask = padding_mask(torch.tensor([5, 0, 3]), 5)  # caption 1 has no real word
    with torch.autograd.detect_anomaly(check_nan=True):  # no NaN even inside the backward
        context, attn = word_attention(h, words, mask)
        assert torch.isfinite(context).all() and torch.isfinite(attn).all()
        assert (context[1] == 0).all() and (attn[1] == 0).all()
        (context.sum() + attn.sum()).backward()
    assert torch.isfinite(h.grad).all() and torch.isfinite(words.grad).all()
    # the others are unaffected by caption 1
    alone, _ = word_attention(h[[0, 2]], words[[0, 2]], mask[[0, 2]])
    assert torch.allclose(alone, context[[0, 2]])


def test_word_attention_module_projects_with_u():
    torch.manual_seed(0)
    module = WordAttention(channels=4, word_dim=6)
    gen = torch.Generator().manual_seed(4)
    h, words = torch.randn(2, 4, 3, 3, generator=gen), torch.randn(2, 6, 7, generator=gen)
    mask = padding_mask(torch.tensor([7, 4]), 7)
    context, attn = module(h, words, mask)
    projected = torch.einsum("cd,bdt->bct", module.U.weight[:, :, 0], words)  # e' = U e
    want_c, want_a = word_attention(h, projected, mask)
    assert torch.allclose(context, want_c, atol=1e-6) and torch.allclose(attn, want_a)
    assert module.U.bias is None and module.U.weight.shape == (4, 6, 1)
    (context.sum()).backward()
    assert module.U.weight.grad.abs().sum() > 0


def test_bad_inputs_are_refused():
    module = WordAttention(4, 6)
    h, words = torch.randn(2, 4, 3, 3), torch.randn(2, 6, 5)
    with pytest.raises(ValueError, match="4 channels"):
        module(torch.randn(2, 5, 3, 3), words)
    with pytest.raises(TypeError, match="bool"):
        module(h, words, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        module(h, words, torch.zeros(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="projected"):
        word_attention(h, words)


def test_glu_halves_channels_first_times_sigmoid_of_second():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 6, 3, 3, generator=gen)
    got = glu(x)
    want = x[:, :3] * (1 / (1 + torch.exp(-x[:, 3:])))
    assert got.shape == (2, 3, 3, 3) and torch.allclose(got, want, atol=1e-6)
    assert torch.allclose(GLU()(x), F.glu(x, dim=1))
    v = torch.randn(4, 10, generator=gen)
    assert torch.allclose(GLU(dim=1)(v), v[:, :5] * torch.sigmoid(v[:, 5:]))
    with pytest.raises(ValueError, match="even"):
        glu(torch.randn(2, 5, 3, 3))
