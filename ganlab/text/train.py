"""Train, evaluate, save and load the course's text encoders (joint embedding and DAMSM).

Reproduce the shipped weights::

    python -m ganlab.text.train joint --out ganlab/weights/text_joint.safetensors
    python -m ganlab.text.train damsm --out ganlab/weights/text_damsm.safetensors

Both train on the first 20,000 birds of the ``train`` split (64 px, ten captions each, one
caption drawn per image and step) and are evaluated on held-out birds: 1,000 of ``test``
(same species, new birds) and 1,000 of ``zeroshot`` (species never seen).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from ganlab.data.birds import load_birds
from ganlab.metrics.retrieval import cosine_similarity_matrix, r_precision, recall_at_k
from ganlab.text.encoders import (
    DAMSMImageEncoder,
    DAMSMTextEncoder,
    JointImageEncoder,
    JointTextEncoder,
    TextFeatures,
    ds_sje_loss,
)
from ganlab.text.vocab import Vocabulary, birds_vocabulary
from ganlab.train import checkpoint as ckpt
from ganlab.validation import padding_mask

KINDS = ("joint", "damsm")
SHIPPED = {"joint": "text_joint", "damsm": "text_damsm"}
MODEL = {"joint": "text.JointEncoders", "damsm": "text.DAMSMEncoders"}
TRAIN_BIRDS, EVAL_BIRDS = 20000, 1000


def tokenize_all(vocab: Vocabulary, captions: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
    """N lists of K captions -> ids (N, K, L), lengths (N, K)."""
    n, k = len(captions), len(captions[0])
    ids, lengths = vocab.encode([c for row in captions for c in row])
    return ids.view(n, k, -1), lengths.view(n, k)


ARCHITECTURES = {
    "joint": (JointTextEncoder, JointImageEncoder),
    "damsm": (DAMSMTextEncoder, DAMSMImageEncoder),
}


def build(kind: str, vocab_size: int) -> tuple[nn.Module, nn.Module]:
    """A fresh (text encoder, image encoder) pair with the default widths."""
    if kind not in ARCHITECTURES:
        raise ValueError(f"unknown encoder kind {kind!r}: expected one of {KINDS}")
    text_cls, image_cls = ARCHITECTURES[kind]
    return text_cls(vocab_size), image_cls()


def pair_loss(kind, text_enc, image_enc, images, ids, lengths, species) -> torch.Tensor:
    if kind == "joint":
        return ds_sje_loss(image_enc(images), text_enc(ids, lengths), species)
    from ganlab.text.damsm import damsm_loss

    words, sentence = text_enc(ids, lengths)
    regions, global_ = image_enc(images)
    return damsm_loss(words, sentence, regions, global_, lengths, class_ids=species)["total"]


def train_encoders(
    kind: str,
    steps: int = 3000,
    batch: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    n_birds: int = TRAIN_BIRDS,
):
    """Train one encoder pair on the birds world; returns (text_enc, image_enc, report)."""
    torch.manual_seed(seed)
    vocab = birds_vocabulary()
    data = load_birds(n_birds, "train", 64)
    ids_all, len_all = tokenize_all(vocab, data.captions)
    text_enc, image_enc = build(kind, len(vocab))
    params = [*text_enc.parameters(), *image_enc.parameters()]
    opt = torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999) if kind == "damsm" else (0.9, 0.999))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(seed)
    start, running = time.perf_counter(), None
    bar = tqdm(range(steps), desc=f"training {kind} encoders")
    for step in bar:
        idx = torch.randint(len(data), (batch,), generator=gen)
        pick = torch.randint(ids_all.shape[1], (batch,), generator=gen)
        images = data.float_images(idx)
        shift = torch.randint(-3, 4, (2,), generator=gen).tolist()  # small translations
        images = torch.roll(images, shifts=shift, dims=(2, 3))
        loss = pair_loss(
            kind,
            text_enc,
            image_enc,
            images,
            ids_all[idx, pick],
            len_all[idx, pick],
            data.species[idx],
        )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if kind == "damsm":
            nn.utils.clip_grad_norm_(params, 1.0)  # AttnGAN clips at 0.25 (lr 2e-4); 1.0 here
        opt.step()
        sched.step()
        if step % 50 == 0:
            value = float(loss)
            running = value if running is None else 0.8 * running + 0.2 * value
            bar.set_postfix(loss=f"{running:.3f}")
    seconds = time.perf_counter() - start
    text_enc.eval(), image_enc.eval()
    report = {
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "seed": seed,
        "train_birds": n_birds,
        "seconds": round(seconds, 1),
        "device": "cpu",
    }
    report["retrieval"] = {
        s: evaluate_retrieval(kind, text_enc, image_enc, s) for s in ("test", "zeroshot")
    }
    return text_enc, image_enc, report


@torch.no_grad()
def embed_pairs(kind, text_enc, image_enc, images, ids, lengths, batch: int = 250):
    """Image and sentence embeddings (N, D) each, in eval mode."""
    img, txt = [], []
    for s in range(0, len(images), batch):
        sl = slice(s, s + batch)
        if kind == "joint":
            img.append(image_enc(images[sl]))
            txt.append(text_enc(ids[sl], lengths[sl]))
        else:
            img.append(image_enc(images[sl])[1])
            txt.append(text_enc(ids[sl], lengths[sl])[1])
    return torch.cat(img), torch.cat(txt)


@torch.no_grad()
def evaluate_retrieval(kind, text_enc, image_enc, split: str = "test", n: int = EVAL_BIRDS) -> dict:
    """R@1 / R@5 both ways on ``n`` held-out birds (caption 0 of each) and R-precision.

    ``species``: a retrieved item counts when it is of the query's species (Reed et al.'s
    class-level protocol); ``instance``: only the exact image-caption pair counts.
    """
    data = load_birds(n, split, 64, progress=False)
    ids, lengths = tokenize_all(birds_vocabulary(), data.captions)
    img, txt = embed_pairs(kind, text_enc, image_enc, data.float_images(), ids[:, 0], lengths[:, 0])
    sim = (
        img @ txt.T if kind == "joint" else cosine_similarity_matrix(img, txt)
    )  # (images, captions)
    same = data.species[:, None] == data.species[None, :]
    exact = torch.eye(n, dtype=torch.bool)
    out = {"n": n}
    for name, rel in (("species", same), ("instance", exact)):
        i2t, t2i = recall_at_k(sim, rel), recall_at_k(sim.T, rel.T)
        out[name] = {
            "image_to_text": {f"R@{k}": v for k, v in i2t.items()},
            "text_to_image": {f"R@{k}": v for k, v in t2i.items()},
        }
    mean, std = r_precision(img, txt)
    out["r_precision"] = {"value": mean, "std": std, "candidates": 100, "n": n}
    return out


def save_encoders(kind: str, text_enc, image_enc, path, report: dict, command: str) -> Path:
    from ganlab.weights import write_manifest_sha256

    vocab = birds_vocabulary()
    manifest = {
        "chapter": "text:" + kind,
        "profile": "cpu",
        "command": command,
        **{k: v for k, v in report.items() if k != "retrieval"},
        "metrics": report["retrieval"],
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "torch": torch.__version__,
    }
    config = {"text": text_enc.config, "image": image_enc.config, "vocab": vocab.itos}
    meta = {"kind": "text_encoders", "model": MODEL[kind], "config": config, "manifest": manifest}
    tensors = {**ckpt.module_tensors(text_enc, "text"), **ckpt.module_tensors(image_enc, "image")}
    path = ckpt.save_state(path, tensors, meta)
    write_manifest_sha256(path)
    return path


@dataclass
class CaptionEncoder:
    """Captions -> :class:`TextFeatures`, with the vocabulary the encoder was trained with."""

    kind: str
    vocab: Vocabulary
    model: nn.Module

    @torch.no_grad()
    def __call__(self, captions) -> TextFeatures:
        ids, lengths = self.vocab.encode(captions)
        return self.encode_ids(ids, lengths)

    @torch.no_grad()
    def encode_ids(self, ids: torch.Tensor, lengths: torch.Tensor) -> TextFeatures:
        device = next(self.model.parameters()).device
        ids, lengths = ids.to(device), lengths.to(device)
        padding = padding_mask(lengths, ids.shape[1])  # (B, L), True where there is no word
        if self.kind == "joint":
            return TextFeatures(self.model(ids, lengths), None, lengths, padding)
        words, sentence = self.model(ids, lengths)
        return TextFeatures(sentence, words, lengths, padding)

    @property
    def dim(self) -> int:
        return self.model.config["embed_dim"] if self.kind == "joint" else self.model.dim


def load_encoders(kind: str, path=None, device="cpu") -> tuple[CaptionEncoder, nn.Module]:
    """(caption encoder, image encoder) from the shipped weights or ``path``, frozen, eval mode."""
    if kind not in KINDS:
        raise ValueError(f"unknown encoder kind {kind!r}: expected one of {KINDS}")
    if path is None:
        from ganlab.weights import shipped

        path = shipped(SHIPPED[kind])
    meta = ckpt.read_meta(path)
    if meta.get("model") != MODEL[kind]:
        raise ckpt.CheckpointError(
            f"{path} holds {meta.get('model')!r}, not {MODEL[kind]} ({kind} encoders)"
        )
    tensors, _ = ckpt.load_state(path, expect={"model": MODEL[kind], "kind": "text_encoders"})
    config = meta["config"]
    vocab = Vocabulary(config["vocab"])
    if vocab.itos != config["vocab"]:
        raise ckpt.CheckpointError(f"{path}: its vocabulary is not in the expected order")
    text_cls, image_cls = ARCHITECTURES[kind]
    text_enc, image_enc = text_cls(**config["text"]), image_cls(**config["image"])
    ckpt.load_module(text_enc, tensors, "text")
    ckpt.load_module(image_enc, tensors, "image")
    for m in (text_enc, image_enc):
        m.to(device).eval().requires_grad_(False)
    return CaptionEncoder(kind, vocab, text_enc), image_enc


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m ganlab.text.train", description=__doc__)
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    text_enc, image_enc, report = train_encoders(
        args.kind, args.steps, args.batch, args.lr, args.seed
    )
    command = " ".join(["python -m ganlab.text.train", *argv])
    path = save_encoders(args.kind, text_enc, image_enc, args.out, report, command)
    import json

    print(json.dumps(report["retrieval"], indent=1))
    print(f"{report['steps']} steps in {report['seconds']} s; wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
