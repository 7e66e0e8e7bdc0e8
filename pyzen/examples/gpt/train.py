"""Pretraining and fine-tuning loops: AdamW, warmup then cosine decay, gradient clipping,
periodic evaluation, a tqdm bar when tqdm is installed."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import pyzen
import pyzen.nn as nn
import pyzen.nn.functional as F
from pyzen.optim import AdamW
from pyzen.optim.lr_scheduler import CosineAnnealingLR, LinearLR, SequentialLR

from .data import Corpus, Snippets
from .model import GPT


@dataclass
class History:
    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    tokens_per_second: float = 0.0


def warmup_cosine(optimizer: AdamW, steps: int, warmup: int) -> SequentialLR:
    warmup = max(1, min(warmup, steps - 1))
    return SequentialLR(
        optimizer,
        [LinearLR(optimizer, start_factor=0.1, total_iters=warmup), CosineAnnealingLR(optimizer, T_max=max(steps - warmup, 1), eta_min=optimizer.param_groups[0]["lr"] * 0.1)],
        milestones=[warmup],
    )


def progress(total: int, desc: str) -> tuple[Iterator[int], Callable[[str], None]]:
    """Step numbers with a tqdm bar when tqdm is installed, plain lines otherwise."""
    try:
        from tqdm import tqdm
    except ImportError:
        return iter(range(total)), lambda text: print(f"{desc}: {text}", flush=True)
    bar = tqdm(range(total), desc=desc, dynamic_ncols=True)
    return iter(bar), bar.set_postfix_str


def device_of(model: nn.Module) -> pyzen.device:
    """Where the model lives: batches are built on the CPU and moved there."""
    return next(model.parameters()).device


@pyzen.no_grad()
def evaluate(model: GPT, corpus: Corpus, batch_size: int, iters: int) -> float:
    model.eval()
    losses = []
    for _ in range(iters):
        x, y = corpus.batch("val", batch_size, model.config.block_size)
        losses.append(model(x.to(device_of(model)), y.to(device_of(model)))[1].item())
    model.train()
    return sum(losses) / len(losses)


def pretrain(model: GPT, corpus: Corpus, steps: int, batch_size: int, lr: float, eval_every: int, eval_iters: int) -> History:
    optimizer = AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    scheduler = warmup_cosine(optimizer, steps, warmup=steps // 20)
    history = History()
    tokens, seconds = 0, 0.0
    steps_iter, report = progress(steps, "pretrain")
    for step in steps_iter:
        start = time.perf_counter()
        x, y = corpus.batch("train", batch_size, model.config.block_size)
        _, loss = model(x.to(device_of(model)), y.to(device_of(model)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        seconds += time.perf_counter() - start
        tokens += x.numel()
        history.steps.append(step)
        history.train_loss.append(loss.item())
        if step % eval_every == 0 or step == steps - 1:
            history.eval_steps.append(step)
            history.val_loss.append(evaluate(model, corpus, batch_size, eval_iters))
        report(f"loss {loss.item():.3f} val {history.val_loss[-1]:.3f} {tokens / seconds:,.0f} tok/s")
    history.tokens_per_second = tokens / seconds
    return history


class Classifier(nn.Module):
    """The GPT body, mean-pooled, under a new linear head."""

    def __init__(self, body: GPT, num_classes: int) -> None:
        super().__init__()
        self.body = body
        self.head = nn.Linear(body.config.n_embd, num_classes)

    def forward(self, idx: pyzen.Tensor) -> pyzen.Tensor:
        return self.head(self.body.hidden(idx).mean(1))


def freeze_lower(model: Classifier, n_blocks: int) -> None:
    """Freeze the embeddings and the lowest n_blocks blocks; the rest and the head train."""
    body = model.body.transformer
    body["wte"].requires_grad_(False)
    body["wpe"].requires_grad_(False)
    for block in list(body["h"])[:n_blocks]:
        block.requires_grad_(False)


def finetune(model: Classifier, train: Snippets, steps: int, batch_size: int, lr: float, desc: str) -> list[float]:
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = AdamW(params, lr=lr, weight_decay=0.01)
    scheduler = warmup_cosine(optimizer, steps, warmup=steps // 10)
    losses = []
    steps_iter, report = progress(steps, desc)
    for _ in steps_iter:
        pick = pyzen.randint(0, train.x.shape[0], (batch_size,))
        loss = F.cross_entropy(model(train.x[pick].to(device_of(model))), train.y[pick].to(device_of(model)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
        report(f"loss {loss.item():.3f}")
    return losses


@pyzen.no_grad()
def predict(model: Classifier, data: Snippets, batch_size: int = 64) -> pyzen.Tensor:
    model.eval()
    preds = [model(data.x[i : i + batch_size].to(device_of(model))).argmax(-1).cpu() for i in range(0, data.x.shape[0], batch_size)]
    model.train()
    return pyzen.cat(preds)
