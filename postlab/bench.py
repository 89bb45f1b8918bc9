"""postlab bench: training throughput (tokens/s), peak memory and wall time, on whatever hardware runs it.

One measurement loads a model with a fresh LoRA adapter, trains `warmup + steps` optimizer steps of one trainer
(SFT of lab 01, reward model of lab 02 or DPO of lab 04, through `postlab.train`) on task-world rows of about `seq_len` tokens, and reports the tokens per
second of the steps after warm-up (TRL counts the non-padding tokens it trains on), the peak memory and the wall
time. `plain=True` runs the same steps through TRL built by hand, without postlab: the ratio of the two is
postlab's overhead.

Importing unsloth patches transformers and TRL for the rest of the process, so compare backends in separate
processes: `postlab bench --backend transformers` and `postlab bench --backend unsloth`.
"""
import json
import time
from pathlib import Path

import torch
from transformers import TrainerCallback

from . import chats, problems
from .runner import peak_rss_mb


class StepClock(TrainerCallback):
    """Times optimizer steps and counts their tokens: the clock starts when step `warmup` ends and stops at the
    last step. Tokens are the Trainer's own count of non-padding input tokens (`num_input_tokens_seen`), which
    every trainer built on transformers' Trainer keeps, unsloth's patched ones included."""

    def __init__(self, warmup: int):
        self.warmup, self.start, self.end, self.tokens = warmup, None, None, {}

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        now = time.perf_counter()
        if state.global_step == self.warmup:
            self.start = now
            self.tokens["start"] = state.num_input_tokens_seen
        self.end, self.tokens["end"] = now, state.num_input_tokens_seen


def rows(trainer: str, n: int, seq_len: int, seed: int = 0) -> list[dict]:
    """n training rows of about seq_len tokens: several task-world problems and their answers in one reply
    (SFT), or the same with one answer wrong in the rejected reply (reward model, DPO)."""
    per_row = max(1, seq_len // 36)  # a problem and its house-style answer are about 36 tokens
    tasks = problems.train_tasks(n * per_row, seed, stream="bench")
    out = []
    for i in range(n):
        group = tasks[i * per_row:(i + 1) * per_row]
        prompt = "Solve each problem:\n" + "\n".join(t["prompt"] for t in group)
        good = "\n".join(problems.demonstration(t).replace("\n", "; ") for t in group)
        if trainer == "sft":
            out.append({"prompt": chats.chat(prompt), "completion": [{"role": "assistant", "content": good}]})
        else:
            bad = good.rsplit("Answer: ", 1)[0] + "Answer: 0"
            out.append({"prompt": chats.chat(prompt), "chosen": [{"role": "assistant", "content": good}],
                        "rejected": [{"role": "assistant", "content": bad}]})
    return out


def _peak_memory_gb() -> float:
    """GPU: the peak allocated memory; CPU: the process's peak RSS (runner.peak_rss_mb)."""
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return peak_rss_mb() / 1024


def _plain_trainer(trainer, model, train_rows, out_dir, steps, batch_size, seq_len, callback, checkpointing=None):
    """The same run written directly against transformers, peft and TRL (for the overhead ratio)."""
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
    from trl import DPOConfig, DPOTrainer, RewardConfig, RewardTrainer, SFTConfig, SFTTrainer
    from datasets import Dataset

    from .models import CHECKPOINT_ABOVE, model_path

    path = model_path(model)
    tok = AutoTokenizer.from_pretrained(path)
    cuda = torch.cuda.is_available()
    dtype = torch.bfloat16 if cuda else torch.float32
    if trainer == "reward":  # as postlab.train.reward: LoRA on the top 10 layers plus the score head
        net = AutoModelForSequenceClassification.from_pretrained(path, dtype=dtype, num_labels=1)
        net.config.pad_token_id = tok.pad_token_id
        layers = net.config.num_hidden_layers
        peft = LoraConfig(task_type="SEQ_CLS", r=16, lora_alpha=32, lora_dropout=0.0, layers_to_transform=list(
            range(layers - 10, layers)), target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    else:
        net = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
        peft = LoraConfig(task_type="CAUSAL_LM", r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear")
    common = dict(output_dir=str(out_dir), max_steps=steps, per_device_train_batch_size=batch_size, learning_rate=1e-4,
                  lr_scheduler_type="cosine", warmup_steps=1, logging_steps=1, save_strategy="no", report_to="none",
                  use_cpu=not cuda, bf16=cuda, gradient_checkpointing=(cuda and net.num_parameters() > CHECKPOINT_ABOVE) if checkpointing is None
                  else checkpointing,
                  max_length=seq_len + 64, disable_tqdm=True, include_num_input_tokens_seen="non_padding")
    if trainer == "sft":
        args, cls = SFTConfig(**common, completion_only_loss=True), SFTTrainer
    elif trainer == "reward":
        args, cls = RewardConfig(**common), RewardTrainer
    else:
        args, cls = DPOConfig(**common, beta=0.1), DPOTrainer
    t = cls(model=net, args=args, train_dataset=Dataset.from_list(train_rows), processing_class=tok, peft_config=peft,
            callbacks=[callback])
    t.train()
    return t


def throughput(trainer: str = "sft", model: str = "default", backend: str = "auto", steps: int = 20, warmup: int = 3,
            batch_size: int = 8, seq_len: int = 256, plain: bool = False, out_dir="bench_out", seed: int = 0,
            checkpointing: bool | None = None) -> dict:
    """Train `warmup + steps` steps and return tokens/s after warm-up, peak memory (GiB) and wall time (s).
    checkpointing: activation checkpointing on or off (None: postlab's default, models.needs_checkpointing)."""
    from . import train
    from .models import choose_backend, load_model

    if trainer not in ("sft", "reward", "dpo"):
        raise ValueError(f"trainer={trainer!r}: use 'sft', 'reward' or 'dpo'.")
    total = warmup + steps
    train_rows = rows(trainer, total * batch_size, seq_len, seed)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    clock = StepClock(warmup)
    t0 = time.perf_counter()
    extra = dict(callbacks=[clock], max_length=seq_len + 64, disable_tqdm=True, lr=1e-4, seed=seed,
                 include_num_input_tokens_seen="non_padding")
    if checkpointing is not None:
        extra["gradient_checkpointing"] = checkpointing
    if plain:
        used = "plain TRL"
        t = _plain_trainer(trainer, model, train_rows, Path(out_dir) / f"plain_{trainer}", total, batch_size, seq_len, clock,
                           checkpointing)
    else:
        used = choose_backend(backend)[0]
        if trainer == "sft":
            net, tok = load_model(model, backend=backend, lora=True, verbose=False, checkpointing=checkpointing)
            t = train.sft(net, tok, train_rows, Path(out_dir) / "sft", max_steps=total, batch_size=batch_size, **extra)
        elif trainer == "reward":
            from .rewards import load_reward_base

            net, tok = load_reward_base(model)
            t = train.reward(net, tok, train_rows, Path(out_dir) / "reward", max_steps=total, batch_size=batch_size, **extra)
        else:
            net, tok = load_model(model, backend=backend, verbose=False, checkpointing=checkpointing)
            t = train.preference("dpo", net, tok, train_rows, Path(out_dir) / "dpo", max_steps=total,
                                 batch_size=batch_size, **extra)
    wall = time.perf_counter() - t0
    tokens = clock.tokens.get("end", 0) - clock.tokens.get("start", 0)
    seconds = clock.end - clock.start
    return {"trainer": trainer, "backend": used, "model": model, "device": torch.cuda.get_device_name(0)
            if torch.cuda.is_available() else "cpu", "steps": steps, "batch_size": batch_size, "seq_len": seq_len,
            "checkpointing": checkpointing, "tokens_per_s": round(tokens / seconds, 1) if tokens else None,
            "tokens_per_step": tokens // steps, "s_per_step": round(seconds / steps, 4),
            "peak_memory_gb": round(_peak_memory_gb(), 3), "wall_s": round(wall, 1)}


def markdown(results: list[dict]) -> str:
    cols = ["trainer", "backend", "model", "device", "checkpointing", "batch_size", "seq_len", "tokens_per_s", "s_per_step",
            "peak_memory_gb", "wall_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r.get(c)) for c in cols) + " |" for r in results]
    return "\n".join(lines) + "\n"


def command(argv=None):
    import argparse

    p = argparse.ArgumentParser(prog="postlab bench", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default")
    p.add_argument("--backend", default="auto", choices=["auto", "transformers", "unsloth"])
    p.add_argument("--trainers", nargs="*", default=["sft", "reward", "dpo"], choices=["sft", "reward", "dpo"],
                   help="the trainers of labs 01 (sft), 02 (reward) and 04 (dpo)")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--plain", action="store_true", help="also run each trainer through plain TRL (overhead ratio)")
    p.add_argument("--checkpointing", nargs="*", default=["default"], choices=["default", "on", "off"],
                   help="activation checkpointing settings to measure (default: postlab's: on for models over 1.5B on a GPU)")
    p.add_argument("--out", default="bench_out", help="folder for bench.json and bench.md (appended to)")
    a = p.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bench.json"
    results = json.loads(path.read_text()) if path.exists() else []
    for trainer in a.trainers:
        for plain, ckpt in [(p_, c) for p_ in ([False, True] if a.plain else [False]) for c in a.checkpointing]:
            r = throughput(trainer, a.model, a.backend, a.steps, a.warmup, a.batch_size, a.seq_len, plain, out,
                        checkpointing={"default": None, "on": True, "off": False}[ckpt])
            print(json.dumps(r), flush=True)
            results.append(r)
            path.write_text(json.dumps(results, indent=1))
    (out / "bench.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    command()
