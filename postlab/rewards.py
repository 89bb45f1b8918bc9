"""Reward models: a language model with a scalar head that scores (prompt, answer) pairs.

Trained on comparisons with TRL's RewardTrainer (Bradley-Terry loss: -log sigmoid(r_chosen - r_rejected)),
saved as an ordinary sequence-classification checkpoint, and used by later labs through `score`.
"""
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


def reward_up_accuracy_down(before: dict, after: dict) -> dict:
    """The task kinds whose reward-model score rose while their verifier accuracy fell, from two evaluations scored
    by `evaluate_scored`: {kind: {"rm_score": [before, after], "accuracy": [before, after]}}. Reward hacking where it
    shows; on a few problems per kind, a pointer to read the answers, not a result."""
    out = {}
    for kind, b in before["by_kind"].items():
        a = after["by_kind"][kind]
        if a["rm_score"] > b["rm_score"] and a["accuracy"] < b["accuracy"]:
            out[kind] = {"rm_score": [b["rm_score"], a["rm_score"]], "accuracy": [b["accuracy"], a["accuracy"]]}
    return out


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
