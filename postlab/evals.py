"""The held-out evaluation every lab uses: accuracy, format compliance and length, overall and per kind."""
from collections import defaultdict

from . import verifiers
from .models import generate


def score(tasks: list[dict], replies: list[str], tokenizer=None) -> dict:
    """Metrics of replies to tasks: accuracy, format_rate, mean_length (tokens, or words without a tokenizer)."""
    rows = []
    for t, r in zip(tasks, replies, strict=True):
        length = len(tokenizer(r, add_special_tokens=False)["input_ids"]) if tokenizer else len(r.split())
        rows.append({"id": t.get("id"), "kind": t["kind"], "prompt": t["prompt"], "answer": t["answer"], "reply": r,
                     "correct": verifiers.is_correct(r, t["answer"], t["answer_kind"]),
                     "formatted": verifiers.follows_format(r), "length": length})
    by_kind = defaultdict(list)
    for row in rows:
        by_kind[row["kind"]].append(row)
    return {**summary(rows), "by_kind": {k: summary(v) for k, v in by_kind.items()}, "rows": rows}


def summary(rows: list[dict]) -> dict:
    n = len(rows)
    return {"n": n,
            "accuracy": sum(r["correct"] for r in rows) / n,
            "format_rate": sum(r["formatted"] for r in rows) / n,
            "mean_length": sum(r["length"] for r in rows) / n}


def evaluate(model, tokenizer, tasks: list[dict], max_new_tokens: int = 64, batch_size: int = 32,
             desc: str = "evaluating") -> dict:
    """Greedy replies to the held-out tasks, scored. Works for a model with or without a LoRA adapter."""
    replies = generate(model, tokenizer, [t["prompt"] for t in tasks], max_new_tokens=max_new_tokens,
                       batch_size=batch_size, desc=desc)
    return score(tasks, replies, tokenizer)


def headline(result: dict) -> dict:
    """The numbers that go into metrics.json (no per-prompt rows)."""
    return {k: v for k, v in result.items() if k != "rows"}


def table(result: dict):
    """A result as a DataFrame: one row per task kind, then 'overall'."""
    import pandas as pd

    rows = {**result["by_kind"], "overall": {k: result[k] for k in ("n", "accuracy", "format_rate", "mean_length")}}
    return pd.DataFrame(rows).T.round(3)
