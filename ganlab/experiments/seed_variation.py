r"""Where an AttnGAN's samples of one caption stop varying, stage by stage.

Per-caption diversity (``caption_runs``) says *that* chapter 4's birds vary too little per
caption; this says *where* the variety goes. For ``n`` test captions and two seeds it prints,
for every stage's image:

* **seeds**: the mean absolute pixel difference between the two seeds' images of the same
  caption (new z and new CA noise);
* **captions**: the same between neighbouring captions with the same seed, the scale to read
  it against;

and, at the last image, how much of the seeds' difference each source of noise makes alone:
a new **z** with the CA noise kept, and a new **CA** sample (eps) with z kept.

With ``--fd N`` it also scores every stage's images alone (the generator cut after that
stage, upsampled to the judge's 64 px), on N training captions as ``ganlab ship
--pick-snapshot`` does: how much each attention stage adds to the first stage's sketch.

A generator whose first stage varies with the seed and whose later stages do not is drawing
each caption's words the same way whatever its sketch: the attention stages erase the
variety. Example::

    python -m ganlab.experiments.seed_variation ganlab/weights/attngan.safetensors \
        runs/attn/generator.safetensors
"""

from __future__ import annotations

import argparse
import sys

import torch

from ganlab.chapters import attngan as chapter
from ganlab.validation import check_count


def _forward(G, c: torch.Tensor, z: torch.Tensor, feats) -> list[torch.Tensor]:
    """G's images for a given CA sample c (B, c_dim) and z (B, z_dim)."""
    h = G.init_stage(c, z)  # (B, ngf, s0, s0)
    return G.draw(h, feats.words, feats.padding)[0]


@torch.no_grad()
def seed_variation(G, captions: list[str], seed: int = 0, text_encoder=None) -> dict:
    """-> {"stages": [{"size", "seeds", "captions"}, ...], "last": {"z", "ca", "seeds"},
    "n_captions"}: mean |difference| of images in [-1, 1] (see the module's docstring)."""
    check_count(len(captions), "captions", minimum=2)
    if text_encoder is None:
        from ganlab.text.train import load_encoders

        text_encoder, _ = load_encoders("damsm")
    device = next(G.parameters()).device
    feats = text_encoder(captions).to(device)
    mu, logvar = G.ca.encode(feats.sentence)  # (B, c_dim) each
    sigma = torch.exp(0.5 * logvar)
    gen = torch.Generator(device=device).manual_seed(seed)
    z1, z2 = (torch.randn(len(mu), G.z_dim, generator=gen, device=device) for _ in range(2))
    e1, e2 = (torch.randn(mu.shape, generator=gen, device=device) for _ in range(2))
    c1, c2 = mu + sigma * e1, mu + sigma * e2  # the CA's two samples, (B, c_dim) each
    base, both = _forward(G, c1, z1, feats), _forward(G, c2, z2, feats)

    def diff(a, b):
        return float((a - b).abs().mean())

    stages = [
        {"size": x.shape[-1], "seeds": diff(x, y), "captions": diff(x, x.roll(1, 0))}
        for x, y in zip(base, both)
    ]
    last = {
        "z": diff(_forward(G, c1, z2, feats)[-1], base[-1]),
        "ca": diff(_forward(G, c2, z1, feats)[-1], base[-1]),
        "seeds": stages[-1]["seeds"],
    }
    return {"stages": stages, "last": last, "n_captions": len(captions)}


def first_stages(G, k: int):
    """A copy of G that stops after its first ``k`` stages (its last image: stage k's)."""
    import copy

    check_count(k, "k (stages to keep)")
    if k > G.num_stages:
        raise ValueError(f"G has {G.num_stages} stages, cannot keep {k}")
    head = copy.deepcopy(G)
    head.stages, head.heads = head.stages[: k - 1], head.heads[:k]
    head.num_stages, head.image_sizes = k, head.image_sizes[:k]
    return head


def stage_fd(G, meta, n: int) -> list[dict]:
    """Every stage's images scored like ``ganlab ship --pick-snapshot`` (judge FD, ``n``
    training captions, upsampled to the judge's 64 px): [{"size", "fd"}, ...]."""
    scores = []
    for k in range(1, G.num_stages + 1):
        head = first_stages(G, k)
        fd = chapter.CHAPTER.selection_score(head, meta, n)["frechet_distance"]
        scores.append({"size": head.image_sizes[-1], "fd": fd})
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m ganlab.experiments.seed_variation",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("generators", nargs="+", help="AttnGAN weights or checkpoints")
    p.add_argument("--n", type=int, default=256, help="test captions (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--fd", type=int, metavar="N",
        help="also each stage's judge FD on N training captions (as --pick-snapshot scores)",
    )  # fmt: skip
    args = p.parse_args(argv)
    try:
        check_count(args.n, "--n", minimum=2)
        if args.fd is not None:
            check_count(args.fd, "--fd", minimum=2)
        loaded = [(path, chapter.load_generator(path)) for path in args.generators]
    except (ValueError, KeyError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from ganlab.chapters.contract import world_of
    from ganlab.evaluation.birds import eval_captions

    for path, (G, meta) in loaded:
        captions = eval_captions("test", args.n, **world_of(meta))[0]
        out = seed_variation(G.eval(), captions, args.seed)
        cells = [
            f"{s['size']} px: seeds {s['seeds']:.3f}, captions {s['captions']:.3f}"
            for s in out["stages"]
        ]
        last = out["last"]
        print(f"{path} (n = {args.n} test captions, pixels in [-1, 1])")
        print("  " + " | ".join(cells))
        print(f"  last image: new z alone {last['z']:.3f}, new CA sample alone {last['ca']:.3f}")
        if args.fd:
            fds = [f"{s['size']} px {s['fd']:.1f}" for s in stage_fd(G.eval(), meta, args.fd)]
            print(f"  judge FD by stage (n = {args.fd} training captions): " + ", ".join(fds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
