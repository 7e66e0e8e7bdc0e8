"""Profile one small-GPT training step (forward, backward, one fused AdamW call) and print the
median step time and the functions that take the most time.

    OMP_WAIT_POLICY=PASSIVE python benchmarks/profile_gpt_step.py
"""
import cProfile, pstats, time, io
import pyzen
from pyzen.backend import cpu
from pyzen.examples.gpt.model import GPT, GPTConfig
pyzen.manual_seed(0)
m = GPT(GPTConfig(block_size=64, n_layer=4, n_head=4, n_embd=128))
params = list(m.parameters())
state = [(cpu.zeros(p.shape, p._data.dtype), cpu.zeros(p.shape, p._data.dtype)) for p in params]
x = pyzen.randint(0, 256, (12, 64)); y = pyzen.randint(0, 256, (12, 64))
def step():
    _, loss = m(x, y)
    for p in params: p.grad = None
    loss.backward()
    cpu.adamw_step([p._data for p in params], [p.grad._data for p in params], [s[0] for s in state], [s[1] for s in state], None,
                   [1] * len(params), lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, decoupled=True, maximize=False)
for _ in range(3): step()
ts = []
for _ in range(10):
    t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
ts.sort()
print(f"small GPT (4L 4H d=128, B=12 T=64) training step: median {ts[5]*1e3:.1f} ms, {768/ts[5]:,.0f} tokens/s")
pr = cProfile.Profile(); pr.enable()
for _ in range(10): step()
pr.disable()
s = io.StringIO(); pstats.Stats(pr, stream=s).sort_stats('tottime').print_stats(10)
for line in s.getvalue().splitlines():
    if 'ncalls' in line or ('{' in line or '.py' in line) and line.strip()[:1].isdigit():
        print(line[:140])
