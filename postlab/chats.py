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
