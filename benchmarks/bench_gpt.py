"""End-to-end: the same GPT in pyzen and in PyTorch, PyTorch's initial weights loaded into
pyzen, trained on the same batches with AdamW. Checks that the loss trajectories agree, then
reports training throughput (tokens/s for forward + backward + AdamW step) side by side.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_gpt.py [--steps 20]
    python benchmarks/bench_gpt.py --device cuda --sizes gpt2 [--bf16]

--device cuda runs both on the GPU (skips without one); --bf16 runs the forward passes
under each framework's autocast(dtype=bfloat16): both then run matmul (nn.Linear) and
attention with bfloat16 operands (pyzen on the CPU: AMX tiles for matmul where the CPU has
them, float32 kernels on rounded operands otherwise); PyTorch also keeps the activations in
bfloat16, where pyzen's stay float32.
Needs PyTorch (`pip install torch`); prints a note and exits if it is missing.
"""
from __future__ import annotations

import argparse
import math
import os
import platform
import time

import numpy as np

import pyzen
from pyzen.examples.gpt.model import GPT, GPTConfig

SIZES = {
    "small": dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch=12),
    "medium": dict(n_layer=6, n_head=6, n_embd=384, block_size=256, batch=8),
    "gpt2": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, batch=8),  # for a GPU
}


def torch_gpt(torch, config: GPTConfig):
    """nanoGPT's model in PyTorch, module names identical to pyzen's GPT."""
    nn, F = torch.nn, torch.nn.functional

    class Attn(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)
            self.c_proj = nn.Linear(config.n_embd, config.n_embd)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.c_attn(x).split(c, dim=2)
            q, k, v = (z.view(b, t, config.n_head, c // config.n_head).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.c_proj(y.transpose(1, 2).reshape(b, t, c))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn, self.ln_2 = nn.LayerNorm(config.n_embd), Attn(), nn.LayerNorm(config.n_embd)
            self.mlp = nn.Module()
            self.mlp.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
            self.mlp.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp.c_proj(F.gelu(self.mlp.c_fc(self.ln_2(x)), approximate="tanh"))

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.transformer = nn.ModuleDict(dict(
                wte=nn.Embedding(config.vocab_size, config.n_embd), wpe=nn.Embedding(config.block_size, config.n_embd),
                h=nn.ModuleList([Block() for _ in range(config.n_layer)]), ln_f=nn.LayerNorm(config.n_embd)))
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
            self.transformer.wte.weight = self.lm_head.weight
            for p in self.parameters():
                torch.nn.init.normal_(p, 0.0, 0.02) if p.dim() > 1 else torch.nn.init.zeros_(p)
            for blk in self.transformer.h:  # LayerNorm weights start at one, as in pyzen
                for ln in (blk.ln_1, blk.ln_2):
                    torch.nn.init.ones_(ln.weight)
            torch.nn.init.ones_(self.transformer.ln_f.weight)

        def forward(self, idx, targets):
            t = idx.shape[1]
            x = self.transformer.wte(idx) + self.transformer.wpe(torch.arange(t, device=idx.device))
            for blk in self.transformer.h:
                x = blk(x)
            logits = self.lm_head(self.transformer.ln_f(x))
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    return Model()


def batches(n: int, batch: int, block: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    with open(os.__file__, "rb") as f:
        text = np.frombuffer(f.read(), dtype=np.uint8).astype(np.int64)
    out = []
    for _ in range(n):
        starts = rng.integers(0, len(text) - block - 1, batch)
        rows = np.stack([text[s : s + block + 1] for s in starts])
        out.append((rows[:, :-1].copy(), rows[:, 1:].copy()))
    return out


def run(torch, name: str, size: dict, steps: int, dev: str, bf16: bool) -> dict:
    config = GPTConfig(block_size=size["block_size"], n_layer=size["n_layer"], n_head=size["n_head"], n_embd=size["n_embd"])
    torch.manual_seed(0)
    tmodel = torch_gpt(torch, config)
    pmodel = GPT(config)
    pmodel.load_state_dict({k: pyzen.from_numpy(v.detach().numpy().copy()) for k, v in tmodel.state_dict().items()})
    tmodel, pmodel = tmodel.to(dev), pmodel.to(dev)
    kw = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
    topt = torch.optim.AdamW(tmodel.parameters(), **kw)
    popt = pyzen.optim.AdamW(pmodel.parameters(), **kw)
    data = batches(steps, size["batch"], size["block_size"])

    def torch_step(x, y):
        with torch.autocast(dev, dtype=torch.bfloat16, enabled=bf16):
            loss = tmodel(torch.from_numpy(x).to(dev), torch.from_numpy(y).to(dev))
        topt.zero_grad(set_to_none=True)
        loss.backward()
        topt.step()
        return loss.item()  # waits for the device

    def pyzen_step(x, y):
        with pyzen.autocast(dev, dtype=pyzen.bfloat16, enabled=bf16):
            _, loss = pmodel(pyzen.from_numpy(x).to(dev), pyzen.from_numpy(y).to(dev))
        popt.zero_grad(set_to_none=True)
        loss.backward()
        popt.step()
        return loss.item()

    # Alternate the two frameworks step by step so machine noise hits both alike.
    t_loss, p_loss, t_time, p_time = [], [], [], []
    for x, y in data:
        s = time.perf_counter(); t_loss.append(torch_step(x, y)); t_time.append(time.perf_counter() - s)
        s = time.perf_counter(); p_loss.append(pyzen_step(x, y)); p_time.append(time.perf_counter() - s)
    tokens = size["batch"] * size["block_size"]
    skip = min(2, steps - 1)  # the first steps include one-off allocation
    t_tps = tokens / float(np.median(t_time[skip:]))
    p_tps = tokens / float(np.median(p_time[skip:]))
    diff = max(abs(a - b) / abs(a) for a, b in zip(t_loss, p_loss))
    return dict(name=name, params=sum(p.numel() for p in pmodel.parameters()), torch_tps=t_tps, pyzen_tps=p_tps,
                ratio=p_tps / t_tps, max_rel_loss_diff=diff, first_loss=(t_loss[0], p_loss[0]), last_loss=(t_loss[-1], p_loss[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--sizes", nargs="*", default=["small", "medium"], choices=list(SIZES))
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--bf16", action="store_true", help="forward passes under autocast(dtype=bfloat16)")
    args = ap.parse_args()
    try:
        import torch
    except ImportError:
        print("bench_gpt: PyTorch is not installed; nothing to compare against")
        return
    if args.device == "cuda" and not (pyzen.cuda.is_available() and torch.cuda.is_available()):
        print(f"bench_gpt: skipped, no CUDA device for both ({pyzen.cuda.unavailable_reason()})")
        return
    torch.set_num_threads(args.threads)
    pyzen._C.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, threads {args.threads}, "
          f"load {os.getloadavg()[0]:.2f}, pyzen ISA {pyzen._C.isa()}, torch {torch.__version__}")
    if args.device == "cuda":
        print(f"device: {pyzen.cuda.get_device_name(0)}, autocast bfloat16: {args.bf16}")
    for name in args.sizes:
        r = run(torch, name, SIZES[name], args.steps, args.device, args.bf16)
        s = SIZES[name]
        print(f"{name}: {s['n_layer']}L {s['n_head']}H d={s['n_embd']} T={s['block_size']} B={s['batch']} ({r['params']:,} params)")
        print(f"  loss step 0 torch {r['first_loss'][0]:.5f} pyzen {r['first_loss'][1]:.5f}; step {args.steps - 1} torch {r['last_loss'][0]:.5f} pyzen {r['last_loss'][1]:.5f}; max relative difference {r['max_rel_loss_diff']:.2e}")
        print(f"  tokens/s torch {r['torch_tps']:,.0f}  pyzen {r['pyzen_tps']:,.0f}  ratio {r['ratio']:.2f}x")
        limit = 3e-2 if args.bf16 else 1e-2  # bfloat16: the two round different things
        assert math.isfinite(r["max_rel_loss_diff"]) and r["max_rel_loss_diff"] < limit, "loss trajectories diverge"


if __name__ == "__main__":
    main()
