"""The main job: pretrain a byte-level GPT on the standard library's source, save it, sample
from it, then fine-tune it (frozen lower blocks, new head, lower learning rate) to tell which
package a snippet comes from, next to the same model trained from scratch.

    pyzen                                  # the defaults: a few minutes on 2 cores
    python -m pyzen.examples.gpt --steps 2000 --n-layer 6 --n-embd 256
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import pyzen
from pyzen.metrics import accuracy, precision_recall_f1

from .data import CLASSES, Corpus, Snippets
from .model import GPT, GPTConfig
from .train import Classifier, History, evaluate, finetune, freeze_lower, predict, pretrain


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="pyzen", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500, help="pretraining steps")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--block-size", type=int, default=64, help="context length in bytes")
    p.add_argument("--n-layer", type=int, default=4)
    p.add_argument("--n-head", type=int, default=4)
    p.add_argument("--n-embd", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--eval-iters", type=int, default=10)
    p.add_argument("--max-bytes", type=int, default=None, help="cap the training corpus (bytes)")
    p.add_argument("--finetune-steps", type=int, default=400)
    p.add_argument("--finetune-lr", type=float, default=5e-4)
    p.add_argument("--freeze", type=int, default=None, help="blocks to freeze (default: the lower half)")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--out", default="pyzen-gpt", help="folder for the checkpoint and the plot")
    return p.parse_args(argv)


def plot(history: History, unigram: float, path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(history.steps, history.train_loss, lw=0.8, alpha=0.6, label="train")
    ax.plot(history.eval_steps, history.val_loss, marker="o", label="validation")
    ax.axhline(unigram, color="gray", ls="--", label="unigram baseline")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats/byte)")
    ax.set_title("pyzen GPT on the Python standard library")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def classify(model: Classifier, train: Snippets, test: Snippets, args: argparse.Namespace, desc: str) -> dict[str, float]:
    finetune(model, train, args.finetune_steps, args.batch_size, args.finetune_lr if desc == "fine-tune" else args.lr, desc)
    pred = predict(model, test)
    _, _, f1 = precision_recall_f1(pred, test.y, num_classes=len(CLASSES), average="macro")
    return {"accuracy": float(accuracy(pred, test.y)), "macro_f1": float(f1)}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.device != "cpu":
        pyzen.cuda.require()
    os.makedirs(args.out, exist_ok=True)
    pyzen.manual_seed(args.seed)
    started = time.perf_counter()

    corpus = Corpus.load(args.max_bytes)
    unigram = corpus.unigram_loss()
    config = GPTConfig(block_size=args.block_size, n_layer=args.n_layer, n_head=args.n_head, n_embd=args.n_embd, dropout=args.dropout)
    model = GPT(config).to(args.device)
    n_params = sum(p.numel() for p in model.parameters())
    print(f"corpus: {len(corpus.train):,} training bytes, {len(corpus.val):,} validation bytes (standard library source)")
    print(f"model: {n_params:,} parameters {dataclasses.asdict(config)}")

    history = pretrain(model, corpus, args.steps, args.batch_size, args.lr, args.eval_every, args.eval_iters)
    val = evaluate(model, corpus, args.batch_size, 4 * args.eval_iters)
    print(f"pretrained: validation loss {val:.3f} nats/byte vs unigram baseline {unigram:.3f}; {history.tokens_per_second:,.0f} tokens/s")

    checkpoint = os.path.join(args.out, "gpt.safetensors")
    pyzen.save({"model": model.state_dict(), "config": dataclasses.asdict(config), "step": args.steps}, checkpoint)
    if plot(history, unigram, os.path.join(args.out, "loss.png")):
        print(f"saved {checkpoint} and {os.path.join(args.out, 'loss.png')}")
    else:
        print(f"saved {checkpoint} (install matplotlib for the loss plot)")

    state = pyzen.load(checkpoint)  # CPU tensors
    prompt = pyzen.tensor([list(b"def ")], dtype=pyzen.long, device=args.device)
    sample = model.generate(prompt, 120, temperature=0.8, top_k=20)[0].tolist()
    print("sample:\n" + bytes(sample).decode("utf-8", errors="replace"))

    train, test = Snippets.load("train", args.block_size), Snippets.load("test", args.block_size)
    print(f"fine-tuning: which of {len(CLASSES)} packages ({', '.join(CLASSES)}) a {args.block_size}-byte snippet comes from; "
          f"{train.x.shape[0]} training and {test.x.shape[0]} held-out snippets")
    tuned = Classifier(GPT(config), len(CLASSES))
    tuned.body.load_state_dict(state["model"])
    tuned.to(args.device)
    freeze_lower(tuned, args.n_layer // 2 if args.freeze is None else args.freeze)
    scratch = Classifier(GPT(config), len(CLASSES)).to(args.device)
    results = {"fine-tuned": classify(tuned, train, test, args, "fine-tune"), "from scratch": classify(scratch, train, test, args, "scratch")}
    for name, r in results.items():
        print(f"{name:>13}: accuracy {r['accuracy']:.3f}  macro F1 {r['macro_f1']:.3f}")
    print(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
