"""Thin wrappers over TRL trainers with settings that train a small model on a CPU in minutes.

Each function takes rows in TRL's own dataset formats and returns the trainer, so the notebook can read
`trainer.state.log_history` for its curves. The TRL config objects are built here in plain sight: what
they set is what TRL documents.
"""
import torch
from datasets import Dataset
from transformers import TrainerCallback

from .chats import chat, message_text, preference_dataset
from .models import add_lora, model_path, needs_checkpointing
from .verifiers import for_trl


LONG_RUN = 100  # optimizer updates; shorter runs keep one learning rate throughout


def schedule(updates: int, warmup: int = 0) -> dict:
    """The learning-rate schedule of the TRL trainers here (PPO keeps one rate throughout): every update at a non-zero rate.

    Short runs (the CPU presets, smoke runs) keep the rate constant: a handful of updates has no use for decay, and
    transformers' warm-up starts at rate 0, which made the only update of a 1-step run a no-op. Long runs (LONG_RUN
    updates or more, the GPU presets) warm up over 5% of the updates, starting at 1/warm-up of the rate (never 0),
    then decay along a cosine to a tenth of it.

    `warmup` > 0 (GRPO's): the rate rises over that many updates, from 1/warmup of it, and then a short run keeps it.
    Adam's first updates move every weight by about the full rate, however noisy its gradient, and GRPO's gradient is
    mostly noise (a few groups a step carry signal): without a warm-up, lab 05's held-out accuracy fell below its
    start at step 10 or 20 in 6 of 7 CPU runs (docs/budget-2026-12-08.md)."""
    if updates < LONG_RUN and not warmup:
        return {"lr_scheduler_type": "constant", "warmup_steps": 0, "lr_scheduler_kwargs": {}}
    # a short run's cosine goes from the rate to the rate itself: constant after the warm-up
    return {"lr_scheduler_type": "cosine_warmup_with_min_lr", "warmup_steps": warmup or updates // 20,
            "lr_scheduler_kwargs": {"min_lr_rate": 1.0 if updates < LONG_RUN else 0.1}}


def common_args(model, out_dir, max_steps, batch_size, lr, seed, **extra) -> dict:
    cuda = torch.cuda.is_available()
    args = dict(output_dir=str(out_dir), max_steps=max_steps, per_device_train_batch_size=batch_size,
                learning_rate=lr, **schedule(max_steps),
                logging_steps=1, save_strategy="no", report_to="none", seed=seed, use_cpu=not cuda,
                bf16=cuda and torch.cuda.is_bf16_supported(),
                # TRL turns activation checkpointing on by default: it saves memory by running the forward pass
                # twice. Small models have memory to spare, so postlab turns it on only for big ones on a GPU.
                gradient_checkpointing=needs_checkpointing(model))
    return {**args, **extra}  # anything passed in extra wins


def sft(model, tokenizer, rows, out_dir, max_steps=150, batch_size=8, lr=3e-4, seed=0, max_length=256, callbacks=None,
        **extra):
    """Supervised fine-tuning on prompt-completion chat rows; the loss falls on the completion only."""
    from trl import SFTConfig, SFTTrainer

    args = SFTConfig(**common_args(model, out_dir, max_steps, batch_size, lr, seed, **extra), max_length=max_length,
                     completion_only_loss=True)
    data = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=callbacks)
    trainer.postlab_rows = data  # the rows as TRL's own script would read them (trl_config)
    trainer.train()
    return trainer


def reward(model, tokenizer, rows, out_dir, max_steps=24, batch_size=4, lr=5e-4, seed=0, max_length=256,
           top_layers=10, lora=None, callbacks=None, **extra):
    """Reward-model training on preference rows (prompt, chosen, rejected) with a fresh LoRA adapter; the
    scalar head ('score') is trained in full.

    The adapter sits on the top `top_layers` layers only (None: all), so the backward pass stops there: on a
    CPU that makes a step about twice as fast, and judging answers needs the top of the network most.
    """
    from trl import RewardConfig, RewardTrainer

    args = RewardConfig(**common_args(model, out_dir, max_steps, batch_size, lr, seed, **extra), max_length=max_length)
    data = preference_dataset(rows)
    from transformers import set_seed

    set_seed(seed)  # as RewardTrainer does before it adds an adapter: the same seed, the same initial adapter
    model = add_lora(model, "SEQ_CLS", top_layers=top_layers, **(lora or {}))  # peft keeps the score head trainable
    trainer = RewardTrainer(model=model, args=args, train_dataset=data, processing_class=tokenizer, callbacks=callbacks)
    trainer.postlab_rows = data
    trainer.train()
    return trainer


def rloo(model, tokenizer, prompts, reward_fn, out_dir, steps=10, batch_size=8, minibatch_size=None, epochs=1,
         num_generations=2, lr=3e-4, beta=0.05, temperature=0.7, max_new_tokens=48, seed=0, callbacks=None, **extra):
    """RLOO with TRL's RLOOTrainer: `num_generations` answers per prompt, each one's baseline the mean reward of
    its siblings (leave one out), no value model. `model` must carry a LoRA adapter: the reference is the same
    network with the adapter off, as in postlab.ppo. `reward_fn(prompts, answers) -> scores`, as for PPO.

    Counted as PPO counts (postlab.ppo.PPOConfig): `steps` rollouts of `batch_size` answers each, and every rollout
    gives `epochs` passes over its minibatches of `minibatch_size` answers (default: the whole rollout), one
    optimizer update each. In TRL's terms: per_device_train_batch_size = minibatch_size, steps_per_generation =
    batch_size / minibatch_size, num_iterations = epochs, max_steps = all the updates."""
    from trl import RLOOConfig, RLOOTrainer

    def reward_model(prompts, completions, **kwargs):  # TRL passes chat messages; reward_fn takes plain text
        return reward_fn([message_text(p) for p in prompts], [message_text(c) for c in completions])

    minibatch_size = minibatch_size or batch_size
    if batch_size % minibatch_size or batch_size % num_generations:
        raise ValueError(f"batch_size={batch_size} must be a multiple of minibatch_size={minibatch_size} and of "
                         f"num_generations={num_generations}.")
    per_rollout = batch_size // minibatch_size
    args = RLOOConfig(**common_args(model, out_dir, steps * per_rollout * epochs, minibatch_size, lr, seed, **extra),
                      steps_per_generation=per_rollout, num_iterations=epochs, num_generations=num_generations,
                      max_completion_length=max_new_tokens, temperature=temperature, top_k=0, top_p=1.0, beta=beta)
    data = Dataset.from_list([{"prompt": chat(p)} for p in prompts])
    trainer = RLOOTrainer(model=model, reward_funcs=reward_model, args=args, train_dataset=data,
                          processing_class=tokenizer, callbacks=callbacks)
    trainer.postlab_rows = data
    trainer.train()
    return trainer


def with_evals(log: list[dict], evals: list[dict], start: dict | None = None) -> list[dict]:
    """One history of a run: its training log, each step joined with the held-out evaluation made at that step (if
    any), after an optional `start` row (step 0, before training)."""
    by_step = {e["step"]: e for e in evals}
    return ([start] if start else []) + [{**h, **by_step.get(h["step"], {})} for h in log]


def grpo_last_batch(trainer) -> dict:
    """What GRPOTrainer recorded of its last batch (the log TRL 1.14 keeps for `log_completions`): the prompt and
    answer texts, each reward function's value and the advantage of every answer, in groups of `num_generations`,
    and how the rewards were scaled. Lab 05 recomputes the advantages from it by hand."""
    logs = trainer._logs  # a private attribute of trl==1.14.2 (pinned); its keys are those TRL logs completions with
    return {"prompt": list(logs["prompt"]), "completion": list(logs["completion"]), "advantages": list(logs["advantages"]),
            "rewards": {name: list(values) for name, values in logs["rewards"].items()},
            "scale_rewards": trainer.args.scale_rewards}


def outcome(trainer) -> dict:
    """What a finished TRL run reports for metrics.json: its training seconds and its last logged loss."""
    logs = trainer.state.log_history
    losses = [h["loss"] for h in logs if "loss" in h]
    return {"train_s": round(logs[-1].get("train_runtime", 0.0), 1), "final_loss": losses[-1] if losses else None}


def budget(trainer) -> dict:
    """What a finished TRL run spent, in the units compare.budget_table sets side by side with PPOConfig.budget:
    optimizer updates, their size, the learning rate and its schedule, and for the RL trainers (GRPO, RLOO) the
    rollouts."""
    a = trainer.args
    rows = a.per_device_train_batch_size * a.gradient_accumulation_steps
    name = getattr(a.lr_scheduler_type, "value", a.lr_scheduler_type)
    if (a.lr_scheduler_kwargs or {}).get("min_lr_rate") == 1.0:  # schedule(..., warmup=) of a short run
        name = f"warm-up over {a.warmup_steps} update{'s' if a.warmup_steps != 1 else ''}, then constant"
    out = {"optimizer updates": trainer.state.global_step, "learning rate": a.learning_rate, "schedule": name}
    if hasattr(a, "num_generations"):  # GRPO, RLOO: rollouts of sampled answers
        passes = a.steps_per_generation * a.num_iterations
        out.update({"rollouts": trainer.state.global_step // passes, "answers per rollout": a.generation_batch_size,
                    "answers per prompt": a.num_generations, "answers per update": rows,
                    "passes over each rollout": a.num_iterations})
    elif hasattr(a, "beta"):  # the preference trainers; KTO's rows are the two halves of a pair
        out["pairs per update"] = rows // 2 if type(a).__name__ == "KTOConfig" else rows
    else:
        out["rows per update"] = rows
    return out


# Preference tuning straight from comparisons. Each method is one TRL trainer and config; the betas are the
# values the papers and TRL's docs start from (SimPO's beta is on length-normalised log-probs, so it is larger).
PREFERENCE_METHODS = {
    "dpo": "DPO: -log sigmoid(beta * margin of log-ratios to the reference)",
    "ipo": "IPO: squared loss pulling the margin to 1/(2 beta), so it cannot run off to infinity",
    "simpo": "SimPO: no reference model; length-normalised log-probs with a target margin gamma",
    "orpo": "ORPO: the SFT loss on the chosen answer plus an odds-ratio penalty, no reference model",
    "kto": "KTO: unpaired thumbs-up / thumbs-down answers, each compared with a reference point",
}
DEFAULT_BETA = {"dpo": 0.1, "ipo": 0.1, "simpo": 2.0, "orpo": 0.1, "kto": 0.1}


def unpaired_rows(rows: list[dict]) -> list[dict]:
    """KTO's format from preference rows: every chosen answer labelled good, every rejected one bad."""
    out = []
    for r in rows:
        out.append({"prompt": r["prompt"], "completion": r["chosen"], "label": True})
        out.append({"prompt": r["prompt"], "completion": r["rejected"], "label": False})
    return out


def preference(method, model, tokenizer, rows, out_dir, max_steps=12, batch_size=8, lr=5e-4, beta=None, seed=0,
               max_length=256, lora=None, callbacks=None, **extra):
    """Train `model` (a plain model: a fresh LoRA adapter goes on it here) on preference rows (prompt, chosen,
    rejected) with one of PREFERENCE_METHODS. For DPO and IPO the reference is the same network with the
    adapter disabled. KTO sees each pair as two unpaired rows, so its batch is doubled: every method reads the
    same pairs per step."""
    if method not in PREFERENCE_METHODS:
        raise ValueError(f"method={method!r}: use one of {', '.join(PREFERENCE_METHODS)}.")
    beta = DEFAULT_BETA[method] if beta is None else beta
    common = common_args(model, out_dir, max_steps, batch_size * (2 if method == "kto" else 1), lr, seed, **extra)
    pairs = preference_dataset(rows)
    if method in ("dpo", "ipo"):
        from trl import DPOConfig as Config, DPOTrainer as Trainer

        args = Config(**common, max_length=max_length, beta=beta, loss_type="sigmoid" if method == "dpo" else "ipo")
    elif method == "simpo":
        from trl.experimental.cpo import CPOConfig as Config, CPOTrainer as Trainer

        args = Config(**common, max_length=max_length, beta=beta, loss_type="simpo", cpo_alpha=0.0)
    elif method == "orpo":
        from trl.experimental.orpo import ORPOConfig as Config, ORPOTrainer as Trainer

        args = Config(**common, max_length=max_length, beta=beta)
    else:
        from trl import KTOConfig as Config, KTOTrainer as Trainer

        args = Config(**common, max_length=max_length, beta=beta)
        pairs = Dataset.from_list(unpaired_rows(rows))
    # The adapter goes on here, not through TRL's peft_config (which unsloth's patched trainers ignore). DPO, IPO
    # and KTO then keep a frozen copy of the fresh adapter as the reference: exactly the SFT model.
    model = add_lora(model, "CAUSAL_LM", **(lora or {}))
    trainer = Trainer(model=model, args=args, train_dataset=pairs, processing_class=tokenizer, callbacks=callbacks)
    trainer.postlab_rows = pairs
    trainer.train()
    return trainer


# GRPO's loss variants, as TRL names them. They differ in how per-token losses are averaged into one number,
# and with it in how answer length is weighed (see GRPOConfig.loss_type):
GRPO_LOSSES = {
    "grpo": "mean over each answer's tokens, then over answers: a wrong long answer is punished less per token",
    "dr_grpo": "sum over tokens divided by a constant (max length), rewards not scaled by their std (Dr. GRPO)",
    "dapo": "mean over all tokens of the batch: every token weighs the same (DAPO; TRL's default)",
}


class EvalEvery(TrainerCallback):
    """A callback that calls `eval_fn(model) -> dict` every `every` optimizer steps and at the end, and
    keeps the results (with the step) in `self.history`."""

    def __init__(self, eval_fn, every: int):
        self.eval_fn, self.every, self.history = eval_fn, every, []

    def _run(self, state, model):
        if not self.history or self.history[-1]["step"] != state.global_step:
            self.history.append({"step": state.global_step, **self.eval_fn(model)})

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every and state.global_step % self.every == 0:
            self._run(state, model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._run(state, model)


def grpo(model, tokenizer, tasks, rewards, out_dir, max_steps=30, batch_size=8, num_generations=4, lr=1e-3,
         beta=0.0, loss_type="dapo", temperature=1.0, max_new_tokens=48, seed=0, eval_fn=None, eval_every=0,
         callbacks=None, **extra):
    """GRPO with TRL's GRPOTrainer on checkable tasks (rows with prompt, answer, answer_kind).

    Each step samples `num_generations` answers to each of `batch_size // num_generations` prompts, scores each
    answer with `rewards` ({name: (fn(reply, answer, kind) -> float, weight)}, e.g. postlab.verifiers'), and
    pushes up the answers that beat their group's mean. `model` must carry a LoRA adapter: with beta > 0 the
    reference for the KL penalty is the same network with the adapter off. `eval_fn(model) -> dict`, if given,
    runs every `eval_every` steps and at the end; its results are `trainer.evals`.
    """
    from trl import GRPOConfig, GRPOTrainer

    if loss_type not in GRPO_LOSSES:
        raise ValueError(f"loss_type={loss_type!r}: use one of {', '.join(GRPO_LOSSES)}.")
    if batch_size % num_generations:
        raise ValueError(f"batch_size={batch_size} must be a multiple of num_generations={num_generations}.")

    extra = {**schedule(max_steps, warmup=max(1, max_steps // 10)), **extra}  # warm-up: see schedule
    args = GRPOConfig(**common_args(model, out_dir, max_steps, batch_size, lr, seed, **extra), num_generations=num_generations,
                      max_completion_length=max_new_tokens, temperature=temperature, top_k=0, top_p=1.0, beta=beta,
                      loss_type=loss_type, scale_rewards="none" if loss_type == "dr_grpo" else "group",
                      reward_weights=[w for _, w in rewards.values()])
    data = Dataset.from_list([{"prompt": chat(t["prompt"]), "answer": t["answer"], "answer_kind": t["answer_kind"]}
                              for t in tasks])
    callback = EvalEvery(eval_fn, eval_every) if eval_fn else None
    trainer = GRPOTrainer(model=model, reward_funcs=[for_trl(fn, n) for n, (fn, _) in rewards.items()], args=args,
                          train_dataset=data, processing_class=tokenizer,
                          callbacks=(callbacks or []) + ([callback] if callback else []))
    trainer.postlab_rows, trainer.postlab_rewards = data, rewards
    trainer.train()
    trainer.evals = callback.history if callback else []
    return trainer


# ---------------------------------------------------------------- the same run through TRL's own scripts

TRL_SCRIPTS = {"SFTConfig": "sft", "RewardConfig": "reward", "DPOConfig": "dpo", "KTOConfig": "kto",
               "GRPOConfig": "grpo", "RLOOConfig": "rloo"}  # trl/scripts/*.py (TRL 1.14 has none for CPO/ORPO)
MACHINE_KEYS = {"output_dir", "logging_dir", "use_cpu", "bf16", "fp16", "disable_tqdm", "gradient_checkpointing"}


def trl_config(trainer, model, out_dir, **script_args):
    """Write the run `trainer` did as a config for TRL's own script, so the same job runs on many GPUs:

        trl sft --config sft.yaml --accelerate_config zero2      (or fsdp2, multi_gpu; add --num_processes N)

    `model` is the model the run started from (a hub id or a local directory, e.g. the merged SFT model of lab
    01); the rows go beside the config as JSONL. Settings that belong to the machine (device, precision,
    activation checkpointing, output folder) are left to TRL's defaults for the GPU. `script_args` adds the
    script's own arguments (e.g. reward_model_name_or_path for RLOO). Returns the config's path, or None for a
    trainer TRL has no script for (SimPO, ORPO)."""
    import yaml
    from pathlib import Path

    from . import verifiers

    script = TRL_SCRIPTS.get(type(trainer.args).__name__)
    if script is None:
        print(f"trl_config: TRL has no command-line script for {type(trainer.args).__name__}; no config written.")
        return None
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data_file = out_dir / f"{script}_rows.jsonl"
    trainer.postlab_rows.to_json(str(data_file), lines=True)
    default = type(trainer.args)(output_dir="x", use_cpu=True, bf16=False).to_dict()  # (machine keys are dropped)
    args = {k: v for k, v in trainer.args.to_dict().items()
            if k not in MACHINE_KEYS and v != default.get(k) and isinstance(v, (int, float, str, bool, list, dict))}
    lora = trainer.model.peft_config["default"]
    config = {"model_name_or_path": model_path(str(model)), "output_dir": str(out_dir / f"{script}_output"),
              "datasets": [{"path": "json", "data_files": str(data_file)}], **args,
              "use_peft": True, "lora_r": lora.r, "lora_alpha": lora.lora_alpha, "lora_dropout": lora.lora_dropout,
              "lora_target_modules": sorted(lora.target_modules), "lora_task_type": getattr(lora.task_type, "value", lora.task_type)}
    if script == "grpo":
        missing = [n for n, (fn, _) in trainer.postlab_rewards.items() if not hasattr(verifiers, f"trl_{fn.__name__}")]
        if missing:
            raise ValueError(f"trl_config: rewards {missing} are not importable by TRL's script; use postlab.verifiers' "
                             "rewards or add a TRL-signature function to a module and list it in reward_funcs.")
        config["reward_funcs"] = [f"postlab.verifiers.trl_{fn.__name__}" for fn, _ in trainer.postlab_rewards.values()]
    config.update(script_args)
    note = (f"# The run postlab trained, for TRL's own script. On many GPUs:\n"
            f"#   trl {script} --config {out_dir / f'{script}.yaml'} --accelerate_config zero2 --num_processes 8\n"
            f"# (zero1/zero2/zero3, fsdp1/fsdp2 or multi_gpu ship with TRL). Precision, device and activation\n"
            f"# checkpointing are left to TRL's GPU defaults (bf16).\n")
    if lora.layers_to_transform:
        note += (f"# postlab put LoRA on layers {lora.layers_to_transform[0]}-{lora.layers_to_transform[-1]} only; "
                 "TRL's ModelConfig has no such option, so this trains LoRA on every layer.\n")
    path = out_dir / f"{script}.yaml"
    path.write_text(note + yaml.safe_dump(config, sort_keys=False))
    print(f"trl_config: wrote {path}")
    return path
