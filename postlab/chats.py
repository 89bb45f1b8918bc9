"""Rows in TRL's conversational format: what the trainers read and what TRL hands a reward function."""
from .problems import demonstration


def chat(prompt: str) -> list[dict]:
    return [{"role": "user", "content": prompt}]


def message_text(x) -> str:
    """The text of what TRL hands a reward function: a plain string, or the last message of a conversation."""
    return x[-1]["content"] if isinstance(x, list) else x


def sft_rows(tasks: list[dict]) -> list[dict]:
    """Prompt-completion rows in TRL's conversational format (the loss then falls on the completion only)."""
    return [{"prompt": chat(t["prompt"]), "completion": [{"role": "assistant", "content": demonstration(t)}],
             "kind": t["kind"]} for t in tasks]


def preference_dataset(rows: list[dict]):
    """Preference rows as the `datasets.Dataset` TRL's trainers take: prompt, chosen, rejected only."""
    from datasets import Dataset

    return Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])


def preview_rows(rows: list[dict], n: int = 3):
    """The first `n` rows as a DataFrame a reader can scan: the prompt, then each reply the row holds (completion,
    or chosen and rejected), whole."""
    import pandas as pd

    return pd.DataFrame([{"prompt": message_text(r["prompt"]),
                          **{k: message_text(r[k]) for k in ("completion", "chosen", "rejected") if k in r},
                          **({"kind": r["kind"]} if "kind" in r else {})} for r in rows[:n]]).style  # whole text
