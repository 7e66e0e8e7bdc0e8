"""The GPT example: training resumes exactly from a checkpoint, and the main job runs end to
end on a tiny configuration (pretrain, checkpoint, plot or message, sample, fine-tune)."""
from __future__ import annotations

import pyzen
from conftest import text_batch
from pyzen.examples.gpt.__main__ import main as gpt_main
from pyzen.examples.gpt.model import GPT, GPTConfig
from pyzen.optim import AdamW
from pyzen.optim.lr_scheduler import CosineAnnealingLR

CONFIG = GPTConfig(block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.1)


def _setup():
    model = GPT(CONFIG)
    opt = AdamW(model.parameters(), lr=3e-3)
    return model, opt, CosineAnnealingLR(opt, T_max=20)


def _train(model, opt, sched, steps: int) -> list[float]:
    losses = []
    for _ in range(steps):
        x, y = text_batch()  # draws from pyzen's generator, as dropout does
        _, loss = model(x, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return losses


def test_resume_from_checkpoint_is_exact(tmp_path):
    pyzen.manual_seed(0)
    model, opt, sched = _setup()
    uninterrupted = _train(model, opt, sched, 10)

    pyzen.manual_seed(0)
    model, opt, sched = _setup()
    first = _train(model, opt, sched, 5)
    path = tmp_path / "ckpt.safetensors"
    pyzen.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": pyzen.get_rng_state()}, path)

    pyzen.manual_seed(123)  # a different process state: everything must come from the file
    model, opt, sched = _setup()
    state = pyzen.load(path)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    pyzen.set_rng_state(state["rng"])
    resumed = first + _train(model, opt, sched, 5)
    assert resumed == uninterrupted  # bit for bit
    assert uninterrupted[-1] < uninterrupted[0]


def test_main_job_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"
    gpt_main(["--steps", "12", "--batch-size", "4", "--block-size", "16", "--n-layer", "2", "--n-head", "2", "--n-embd", "32",
              "--eval-every", "6", "--eval-iters", "1", "--max-bytes", "200000", "--finetune-steps", "3", "--out", str(out)])
    text = capsys.readouterr().out
    assert (out / "gpt.safetensors").exists()
    state = pyzen.load(out / "gpt.safetensors")
    assert state["step"] == 12 and state["config"]["n_embd"] == 32
    for needle in ("validation loss", "unigram baseline", "sample:", "fine-tuned: accuracy", "from scratch: accuracy"):
        assert needle in text
