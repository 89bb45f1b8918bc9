"""Reward models: a language model with a scalar head that scores (prompt, answer) pairs.

Trained on comparisons with TRL's RewardTrainer (Bradley-Terry loss: -log sigmoid(r_chosen - r_rejected)),
saved as an ordinary sequence-classification checkpoint, and used by later labs through `score`.
"""
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import evals, verifiers
from .chats import chat
from .models import ModelNotFoundError, generate, load_tokenizer, merge_adapter, model_path


def load_reward_base(model: str = "default", adapter=None):
    """A sequence-classification model (one output) on the same backbone, with an SFT adapter merged if given."""
    from transformers import AutoModelForSequenceClassification

    path = model_path(model)
    tok = load_tokenizer(path, verbose=False)
    net = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    net.config.pad_token_id = tok.pad_token_id
    if adapter is not None:
        net = merge_adapter(net, adapter)
    return net, tok


def load_reward_model(path):
    """A reward model saved by `save_reward_model` (e.g. `{run_dir}/02_reward_model/reward_model`)."""
    from transformers import AutoModelForSequenceClassification

    if not Path(path, "config.json").exists():
        raise ModelNotFoundError(f"{path}: no reward model here. Fix: run labs/02_reward_model.ipynb with the "
                                 "same run_dir first.")
    net = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32)
    net.to("cuda" if torch.cuda.is_available() else "cpu").eval()
    return net, load_tokenizer(path, verbose=False)


def save_reward_model(net, tok, path):
    """Merge the LoRA adapter (and trained score head) into a plain checkpoint that loads without peft."""
    merged = net.merge_and_unload() if hasattr(net, "merge_and_unload") else net
    merged.save_pretrained(path)
    tok.save_pretrained(path)
    return merged


@torch.no_grad()
def score(rm, tok, prompts, answers, batch_size: int = 16, progress: bool = False) -> list[float]:
    """Reward of each (prompt, answer): the prompt as a user turn, the answer as the assistant's reply,
    in the chat template, exactly as RewardTrainer saw its training pairs."""
    texts = [tok.apply_chat_template((chat(p) if isinstance(p, str) else p) + [{"role": "assistant", "content": a}],
                                     tokenize=False) for p, a in zip(prompts, answers, strict=True)]
    device = next(rm.parameters()).device
    was_training = rm.training
    rm.eval()
    out = []
    for i in tqdm(range(0, len(texts), batch_size), desc="scoring", disable=not progress, leave=False):
        enc = tok(texts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        out += rm(**enc).logits[:, 0].float().tolist()
    rm.train(was_training)
    return out


def evaluate_scored(policy, tok, rm, rm_tok, tasks, **kwargs) -> dict:
    """The held-out evaluation (greedy replies, verifier accuracy, format, length) plus the reward model's
    score of every reply, overall and per kind: does the reward follow the verifier?"""
    result = evals.evaluate(policy, tok, tasks, **kwargs)
    rows = result["rows"]
    return add_scores(result, score(rm, rm_tok, [r["prompt"] for r in rows], [r["reply"] for r in rows]))


def add_scores(result: dict, scores) -> dict:
    """Put reward-model scores into an evaluation result (evals.check_replies): per reply, per kind and overall."""
    rows = result["rows"]
    for row, r in zip(rows, scores, strict=True):
        row["reward"] = r
    result["rm_score"] = sum(r["reward"] for r in rows) / len(rows)
    for kind, summary in result["by_kind"].items():
        kept = [r["reward"] for r in rows if r["kind"] == kind]
        summary["rm_score"] = sum(kept) / len(kept)
    return result


def pairwise_accuracy(rm, tok, rows) -> dict:
    """Share of preference rows where the chosen answer outscores the rejected one, overall and per kind."""
    prompts = [r["prompt"] for r in rows]
    chosen = score(rm, tok, prompts, [r["chosen"][-1]["content"] for r in rows])
    rejected = score(rm, tok, prompts, [r["rejected"][-1]["content"] for r in rows])
    wins = [c > j for c, j in zip(chosen, rejected)]
    by_kind = {}
    for r, w in zip(rows, wins):
        by_kind.setdefault(r["kind"], []).append(w)
    return {"accuracy": sum(wins) / len(wins), "by_kind": {k: sum(v) / len(v) for k, v in by_kind.items()},
            "chosen_rewards": chosen, "rejected_rewards": rejected}


def best_of_n(policy, tok, rm, rm_tok, tasks, ns=(1, 2, 4, 8), temperature: float = 1.0, max_new_tokens: int = 48,
              seed: int = 0) -> dict:
    """Sample up to max(ns) answers per task, keep the reward model's favourite among the first N.

    Samples are drawn in rounds (1, then up to 2, 4, 8 in all), so the generation time at N is measured, not
    estimated. Returns per N: verifier accuracy of the pick, mean reward of the pick, oracle accuracy (any of
    the N correct) and cumulative generation seconds; plus every sample with its reward and correctness.
    """
    prompts = [t["prompt"] for t in tasks]
    samples = [[] for _ in tasks]
    seconds, have, total = {}, 0, 0.0
    for n in sorted(ns):
        t0 = time.time()
        k = n - have
        if k > 0:
            out = generate(policy, tok, prompts, max_new_tokens=max_new_tokens, temperature=temperature,
                           num_return_sequences=k, seed=seed + n, desc=f"sampling to N={n}")
            for i in range(len(tasks)):
                samples[i] += out[i * k:(i + 1) * k]
            have = n
        total += time.time() - t0
        seconds[n] = total
    flat = [(i, s) for i, group in enumerate(samples) for s in group]
    rewards = score(rm, rm_tok, [prompts[i] for i, _ in flat], [s for _, s in flat], progress=True)
    table = [[] for _ in tasks]
    for (i, s), r in zip(flat, rewards):
        t = tasks[i]
        table[i].append({"reply": s, "reward": r, "correct": verifiers.is_correct(s, t["answer"], t["answer_kind"]),
                         "formatted": verifiers.follows_format(s), "kind": t["kind"]})
    result, picked = {}, {}
    for n in ns:
        picks = [max(group[:n], key=lambda x: x["reward"]) for group in table]
        picked[n] = [float(p["correct"]) for p in picks]
        result[n] = {"accuracy": sum(p["correct"] for p in picks) / len(picks),
                     "mean_reward": sum(p["reward"] for p in picks) / len(picks),
                     "oracle": sum(any(x["correct"] for x in group[:n]) for group in table) / len(table),
                     "gen_seconds": round(seconds[n], 1)}
    # per problem, the accuracy of one sample at this temperature: the mean over all its samples (the paired
    # baseline of best-of-N, with less noise than the first sample alone)
    one_sample = [sum(x["correct"] for x in group) / len(group) for group in table]
    return {"by_n": result, "picked": picked, "one_sample": one_sample, "groups": table,
            "samples": [x for group in table for x in group]}


def on_policy_pairwise(groups) -> list[float]:
    """Per problem whose samples hold both right and wrong answers (the verifier's verdict), the share of
    (right, wrong) pairs the reward model ranks right first: pairwise accuracy on the policy's own answers to
    held-out problems, one value per problem (so an interval resamples problems, not pairs of one problem)."""
    out = []
    for group in groups:
        right = [x["reward"] for x in group if x["correct"]]
        wrong = [x["reward"] for x in group if not x["correct"]]
        if right and wrong:
            out.append(sum((r > w) + 0.5 * (r == w) for r in right for w in wrong) / (len(right) * len(wrong)))
    return out


def on_policy_pairs(policy, tok, tasks, k: int = 4, temperature: float = 0.7, max_new_tokens: int = 48,
                    seed: int = 0) -> list[dict]:
    """Preference rows from the policy's own mistakes: sample k answers per task, and pair every answer the
    verifier marks wrong (rejected) with a right one (chosen): a right sample in the house style when the
    group has one, else the reference demonstration. This is how comparison data is really collected (on
    the model's own outputs), with the verifier standing in for the labeler."""
    from .problems import demonstration

    out = generate(policy, tok, [t["prompt"] for t in tasks], max_new_tokens=max_new_tokens, temperature=temperature,
                   num_return_sequences=k, seed=seed, desc="sampling pairs")
    rows = []
    for i, t in enumerate(tasks):
        group = out[i * k:(i + 1) * k]
        right = [s for s in group if verifiers.is_correct(s, t["answer"], t["answer_kind"]) and verifiers.follows_format(s)]
        for s in group:
            if not verifiers.is_correct(s, t["answer"], t["answer_kind"]):
                good = right[len(rows) % len(right)] if right else demonstration(t)
                rows.append({"prompt": chat(t["prompt"]), "chosen": [{"role": "assistant", "content": good}],
                             "rejected": [{"role": "assistant", "content": s}], "kind": "sampled_wrong",
                             "task_kind": t["kind"]})
    return rows
