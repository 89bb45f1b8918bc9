"""Presets: the model and the budgets of every lab for the hardware at hand, chosen by one parameter.

Each notebook reads its defaults with `start_lab(name, run_dir, preset, smoke, seed, **params)`, which calls
`presets.lab(name, preset, smoke, **params)`, so notebooks never branch on hardware:
- "cpu": the embedded SmolLM2-135M-Instruct and budgets that fit a laptop CPU (the default run).
- "gpu": SmolLM2-1.7B-Instruct (same tokenizer and chat template, so the house style and the verifiers carry over),
  bigger batches, more steps and larger held-out sets. The backend is "auto": unsloth when it imports.
- "gpu-4bit": the same with the frozen base weights in 4 bits (QLoRA), for GPUs with little memory.
- "auto": "gpu" when a CUDA GPU is visible, else "cpu". On a GPU whose machine has neither the gpu model cached nor the
  hub in reach, auto keeps the gpu budgets with the embedded default model, and says so; "gpu" stays strict.
Smoke mode cuts the budgets to a few real steps on any preset. A notebook parameter that is set wins over both.
The GPU budgets are starting points sized for one 24-80 GB GPU, not tuned results.
"""
import torch

BUDGETS = {
    "cpu": {  # at most 10 minutes a lab on a 2-core CPU, most of it on the lab's main experiment (metrics.json: main_s)
        "01_sft": dict(max_steps=40, batch_size=8, eval_per_kind=10, max_new_tokens=64),
        "02_reward_model": dict(max_steps=40, made_pairs=64, sweep_steps=5, noise_levels=[], sample_prompts=40,
                                bon_per_kind=16, bon_ns=[1, 2, 4], heldout_per_kind=8, sweep_per_kind=4, max_new_tokens=48),
        # PPO's main run: 10 steps x 32 answers (320 rollouts; decoding 32 answers at once takes 1.2x the time of 16);
        # the weak teacher and RLOO would each cost another run
        "03_ppo": dict(steps=10, batch_size=32, minibatch_size=4, train_prompts=80, leash_steps=4, eval_per_kind=16, samples=1,
                       max_new_tokens=32, weak_teacher=False, run_rloo=False),
        # DPO on the reward model's labels (section 8) is a second DPO run (144 s) whose accuracy change stays inside a
        # run's noise at 16 steps: off; the reward model's labels are still compared with the annotator's
        "04_dpo_on_your_data": dict(n_pairs=64, steps=16, batch_size=4, eval_per_kind=12, max_new_tokens=48, methods=["dpo"],
                                    train_on_rm_labels=False),
        # GRPO's main run: 40 steps x 4 prompts x 8 answers (1280); no mixed filter: groups of 8 at temperature 1 are
        # mixed more often than groups of 4 at 0.7, and the filter's 1280 samples (140 s) buy more as training
        "05_reasoning_rl": dict(steps=40, prompts_per_step=4, eval_per_kind=6, task_eval=40, eval_every=20, probe_per_kind=4,
                                variants=[], max_new_tokens=64, only_mixed=False),
        "06_ai_feedback": dict(judge_per_kind=6, revise_per_kind=3, train_prompts=32, steps=12, batch_size=4, eval_per_kind=8,
                               max_new_tokens=40),  # 384 s at judge_per_kind=8, revise_per_kind=4, 48 tokens (the run of 16:59, seed 0)
        "07_scoreboard": dict(per_kind=5, probes=30, best_of=4, kl_prompts=24, max_new_tokens=40,
                              models=["raw", "sft", "ppo", "dpo", "grpo", "dpo_ai_labels"]),  # best-of-N: lab 02 measures it
    },
    "gpu": {
        "01_sft": dict(max_steps=300, batch_size=16, eval_per_kind=40, max_new_tokens=64),  # 40: problems.MAX_HELDOUT_PER_KIND
        "02_reward_model": dict(max_steps=150, made_pairs=256, sweep_steps=40, noise_levels=[0.0, 0.1, 0.25], sample_prompts=200,
                                bon_per_kind=32, bon_ns=[1, 2, 4, 8, 16], heldout_per_kind=16, sweep_per_kind=8, max_new_tokens=48),
        "03_ppo": dict(steps=40, batch_size=32, minibatch_size=8, train_prompts=400, leash_steps=40, eval_per_kind=25, samples=8,
                       max_new_tokens=32, weak_teacher=True, run_rloo=True),
        "04_dpo_on_your_data": dict(n_pairs=400, steps=60, batch_size=8, eval_per_kind=25, max_new_tokens=48,
                                    methods=["dpo", "ipo", "simpo", "orpo", "kto"], train_on_rm_labels=True),
        "05_reasoning_rl": dict(steps=60, prompts_per_step=8, eval_per_kind=40, task_eval=40, eval_every=10, probe_per_kind=8,
                                variants=[["grpo", 0.0], ["dapo", 0.04]], max_new_tokens=64, only_mixed=True),
        "06_ai_feedback": dict(judge_per_kind=25, revise_per_kind=16, train_prompts=200, steps=60, batch_size=8, eval_per_kind=25,
                               max_new_tokens=64),
        "07_scoreboard": dict(per_kind=16, probes=30, best_of=8, kl_prompts=48, max_new_tokens=64, models=None),
    },
}
SMOKE = {  # a few real training steps, tiny evaluations and short replies: checks that everything runs, on any preset
    "01_sft": dict(max_steps=10, eval_per_kind=2, max_new_tokens=16),  # 10 steps: the house style, for the later labs
    "02_reward_model": dict(max_steps=2, made_pairs=16, sweep_steps=1, noise_levels=[0.0], sample_prompts=3, bon_per_kind=1,
                            bon_ns=[1, 2], heldout_per_kind=2, sweep_per_kind=1, max_new_tokens=16),
    # 4 prompts x 2 answers for RLOO: at 12 tokens the smoke SFT model's two answers to a prompt are the same text a
    # quarter of the time (no signal); with 2 prompts that left RLOO's one update at zero about once in 16 runs
    "03_ppo": dict(steps=1, batch_size=8, minibatch_size=4, train_prompts=8, leash_steps=1, eval_per_kind=1, samples=2,
                   max_new_tokens=16, weak_teacher=True, run_rloo=True),
    "04_dpo_on_your_data": dict(n_pairs=8, steps=1, batch_size=2, eval_per_kind=1, max_new_tokens=16,
                                methods=["dpo", "kto"], train_on_rm_labels=True),  # a paired and an unpaired loss; test_train trains every method
    "05_reasoning_rl": dict(steps=2, prompts_per_step=2, eval_per_kind=1, task_eval=2, eval_every=1, probe_per_kind=1, variants=[],
                            max_new_tokens=48, only_mixed=True),  # room for a counting answer: groups whose rewards differ
    "06_ai_feedback": dict(judge_per_kind=1, revise_per_kind=1, train_prompts=4, steps=1, batch_size=2, eval_per_kind=1,
                           max_new_tokens=16),
    "07_scoreboard": dict(per_kind=1, probes=2, best_of=2, kl_prompts=2, max_new_tokens=12, models=None),  # every model
}
MODELS = {  # model and load_model arguments of each preset
    "cpu": dict(model="default", load=dict(backend="auto")),
    "gpu": dict(model="HuggingFaceTB/SmolLM2-1.7B-Instruct", load=dict(backend="auto", max_seq_length=1024)),
    "gpu-4bit": dict(model="HuggingFaceTB/SmolLM2-1.7B-Instruct",
                     load=dict(backend="auto", max_seq_length=1024, load_in_4bit=True)),
}
PRESETS = list(MODELS) + ["auto"]


def choose(preset: str = "auto") -> str:
    if preset not in PRESETS:
        raise ValueError(f"preset={preset!r}: use one of {', '.join(PRESETS)}.")
    if preset == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    if preset != "cpu" and not torch.cuda.is_available():
        raise RuntimeError(f"preset={preset!r} needs a CUDA GPU and none is visible. Fix: preset='cpu' (or 'auto').")
    return preset


def lab(name: str, preset: str = "auto", smoke: bool = False, **given) -> dict:
    """The settings of lab `name`: {"preset", "model", "load": load_model kwargs, and the lab's budgets}.

    `given` are the notebook's own parameters: each one that is not None wins over the preset (0, False and [] are
    values, not gaps: `eval_every=0` turns evaluation off, `noise_levels=[]` skips the sweep). Prints the result."""
    chosen = choose(preset)
    budgets = BUDGETS["cpu" if chosen == "cpu" else "gpu"]
    if name not in budgets:
        raise ValueError(f"no preset for lab {name!r}: the labs are {', '.join(budgets)}.")
    out = {"preset": chosen, "model": MODELS[chosen]["model"], "load": dict(MODELS[chosen]["load"]), **budgets[name]}
    if preset == "auto" and chosen != "cpu" and given.get("model") is None:
        from .models import findable

        found, where = findable(out["model"])
        if not found:
            print(f"postlab: auto chose the {chosen} preset (a CUDA GPU is visible), but its model {out['model']} is {where}: "
                  f"using the embedded default model with the {chosen} budgets. Fix: pass model= (a hub id or a local "
                  f"directory) for another, or preset='{chosen}' to insist on {out['model']}.")
            out["model"] = MODELS["cpu"]["model"]
    if smoke:
        out.update(SMOKE[name])
    out.update({k: v for k, v in given.items() if v is not None})
    print(f"postlab: preset {chosen}{' (smoke)' if smoke else ''} for {name}: "
          + ", ".join(f"{k}={v}" for k, v in out.items() if k != "preset"))
    return out
