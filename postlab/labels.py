"""Preference labels: pairs of the model's own answers, a labels file that never loses a click, and the
numbers a labeling session should report.

- `sample_pairs` asks a policy for two different answers per prompt.
- `LabelFile` is the append-only JSONL record of every label (and every undo). Its first line names the
  pairs it belongs to, so labels are never applied to the wrong pairs. Reading it replays the events; a
  file it cannot read is reported, never rewritten.
- `to_dataset` exports the final labels in TRL's preference format (ties and skips stay out).
The scripted annotator and the statistics of a labeling session live in `annotators.py`.
"""
import hashlib
import json
import os
import random
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

from .chats import chat, preference_dataset
from .files import DataError, read_rows

LABELS = ("A", "B", "tie", "skip")  # A = the answer shown on the left, B = the one on the right
FORMAT = "postlab-labels/1"


# ---------------------------------------------------------------- pairs


def sample_pairs(policy, tok, items: list[dict], temperature: float = 0.7, max_new_tokens: int = 40, seed: int = 0,
                 tries: int = 3) -> list[dict]:
    """Two different sampled answers per prompt. `items` are dicts with a 'prompt' (and, for task-world
    prompts, 'answer' and 'answer_kind' so a verifier can judge). Prompts whose samples stay identical after
    `tries` rounds are dropped."""
    from .models import generate

    answers = [[] for _ in items]
    for round_ in range(tries):
        need = [i for i in range(len(items)) if len(answers[i]) < 2]
        if not need:
            break
        out = generate(policy, tok, [items[i]["prompt"] for i in need], max_new_tokens=max_new_tokens,
                       temperature=temperature, num_return_sequences=2, seed=seed + round_,
                       desc=f"sampling pairs (round {round_ + 1})")
        for j, i in enumerate(need):
            for s in out[2 * j:2 * j + 2]:
                if s and s not in answers[i] and len(answers[i]) < 2:
                    answers[i].append(s)
    pairs = []
    for item, ans in zip(items, answers):
        if len(ans) == 2:
            pairs.append({"id": f"pair-{len(pairs):04d}", "prompt": item["prompt"], "answers": ans,
                          "source": item.get("kind", "open"), "answer": item.get("answer"),
                          "answer_kind": item.get("answer_kind")})
    return pairs


def preview_pairs(pairs: list[dict], n: int = 4):
    """The first `n` pairs as a DataFrame: prompt, both answers whole, and where the prompt came from."""
    import pandas as pd

    return pd.DataFrame([{"prompt": p["prompt"], "answer 1": p["answers"][0], "answer 2": p["answers"][1],
                          "source": p.get("source")} for p in pairs[:n]]).style  # whole text, not cut at 50 characters


def save_pairs(pairs: list[dict], path) -> None:
    Path(path).write_text("".join(json.dumps(p) + "\n" for p in pairs))


def load_pairs_file(path) -> list[dict]:
    """Pairs saved by `save_pairs`, checked line by line."""
    pairs = []
    for line, p in read_rows(path):
        if not {"id", "prompt", "answers"} <= set(p) or len(p["answers"]) != 2:
            raise DataError(f"{path}:{line}: a pair needs 'id', 'prompt' and two 'answers'. Fix: delete the file to "
                            "sample the pairs again.")
        pairs.append(p)
    return pairs


def pairs_fingerprint(pairs: list[dict]) -> str:
    text = json.dumps([[p["id"], p["prompt"], p["answers"]] for p in pairs])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def swapped(pair_id: str, seed: int = 0) -> bool:
    """Whether the pair's second answer is shown on the left: random, but the same for a pair every time."""
    return random.Random(f"postlab-swap-{seed}-{pair_id}").random() < 0.5


def winner(label: str, swap: bool) -> int | None:
    """Index (0 or 1, in the pair's own order) of the answer a screen label prefers; None for tie or skip."""
    if label not in ("A", "B"):
        return None
    return int((label == "B") != swap)


# ---------------------------------------------------------------- the labels file


@contextmanager
def _locked(path: Path):
    """The file opened for reading and appending, under an exclusive lock (where the system has file locks)."""
    with path.open("a+b") as f:
        try:
            import fcntl
        except ImportError:  # Windows: no lock
            fcntl = None
        if fcntl:
            fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield f
        finally:
            if fcntl:
                fcntl.flock(f, fcntl.LOCK_UN)


class LabelFileError(DataError):
    """A labels file that cannot be read or belongs to other pairs; it is left untouched."""


class LabelFile:
    """The append-only labels file of one set of pairs.

    Every event is one JSON line, written and flushed to disk before the call returns:
    {"pair_id", "label": A|B|tie|skip|undo, "annotator", "time", "swap", "chosen"}. The current labels are
    the replay of the events: an 'undo' takes back that annotator's latest label. The file is the only truth:
    every read first takes in what was appended since (by this object, by a labeler widget, by another kernel),
    so two LabelFile objects on one path always agree. Writers take a lock on the file, so two creators at once
    write one header and two writers never interleave a line. A last line cut short (a crash mid-write) is
    skipped with a warning; every complete label is kept and appending goes on after it.
    """

    def __init__(self, path, pairs: list[dict]):
        self.path, self.pairs = Path(path), pairs
        self.index = {p["id"]: i for i, p in enumerate(pairs)}
        self.fingerprint = pairs_fingerprint(pairs)
        self.events: list[dict] = []
        self._offset, self._line, self._torn = 0, 0, set()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(self.path) as f:
            if f.seek(0, os.SEEK_END) == 0:
                self._write(f, {"format": FORMAT, "pairs": self.fingerprint, "n_pairs": len(pairs)})
        self._sync()

    def _fail(self, line: int, why: str):
        raise LabelFileError(f"{self.path}:{line}: {why} The file was left as it is. Fix: pass another labels path "
                             "(or move this file away) to start a new one, or repair the line shown.")

    def _sync(self):
        """Take in the complete lines appended since the last read. An unfinished last line is left for later: it
        may still be being written, or it was cut short, which `_append` closes off before writing on."""
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        *lines, tail = chunk.split(b"\n")
        self._offset += len(chunk) - len(tail)
        for raw in lines:
            self._line += 1
            self._take(raw.decode("utf-8", errors="replace"), self._line)
        if tail.strip() and self._line + 1 not in self._torn:
            self._torn.add(self._line + 1)
            warnings.warn(f"{self.path}:{self._line + 1}: the last line is cut short (a write that did not finish); "
                          "it is skipped, every complete label is kept.", stacklevel=3)

    def _take(self, line: str, n: int):
        if n == 1:  # the header
            try:
                head = json.loads(line)
            except json.JSONDecodeError:
                head = None
            if not isinstance(head, dict) or head.get("format") != FORMAT:
                self._fail(1, f"this is not a postlab labels file (its first line should be a {FORMAT} header).")
            if head.get("pairs") != self.fingerprint:
                self._fail(1, f"these labels belong to another set of pairs (fingerprint {head.get('pairs')}, "
                              f"{head.get('n_pairs')} pairs; the pairs shown now are {self.fingerprint}, {len(self.pairs)}).")
            return
        if not line.strip():
            return
        try:
            event = json.loads(line)
        except json.JSONDecodeError as e:
            if not line.rstrip().endswith("}"):  # a write cut short, closed off by a later append
                if n not in self._torn:
                    self._torn.add(n)
                    warnings.warn(f"{self.path}:{n}: a line cut short (a write that did not finish) is skipped.",
                                  stacklevel=4)
                return
            self._fail(n, f"not valid JSON ({e.msg}).")
        if not isinstance(event, dict) or event.get("label") not in LABELS + ("undo",) \
                or event.get("pair_id") not in self.index or not event.get("annotator"):
            self._fail(n, "not a label event (needs pair_id of a known pair, label in A/B/tie/skip/undo, annotator).")
        self.events.append(event)

    @staticmethod
    def _write(f, record: dict):
        f.write((json.dumps(record) + "\n").encode())
        f.flush()
        os.fsync(f.fileno())

    def _append(self, record: dict):
        with _locked(self.path) as f:
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a line cut short: close it off, so this event starts a line of its own
                    f.write(b"\n")
            self._write(f, record)
        self._sync()

    def add(self, pair_id: str, label: str, annotator: str = "me", swap: bool = False) -> dict:
        """Record a label as seen on screen (A = left, B = right), with the swap that was shown."""
        if label not in LABELS:
            raise ValueError(f"label={label!r}: use one of {', '.join(LABELS)}.")
        if pair_id not in self.index:
            raise KeyError(f"no pair {pair_id!r} in these pairs")
        event = {"pair_id": pair_id, "label": label, "annotator": annotator, "time": time.time(), "swap": swap,
                 "chosen": winner(label, swap)}
        self._append(event)
        return event

    def undo(self, annotator: str = "me") -> str | None:
        """Take back this annotator's latest label; returns its pair id (None when there is nothing to undo)."""
        stack = self._stack(annotator)
        if not stack:
            return None
        event = {"pair_id": stack[-1]["pair_id"], "label": "undo", "annotator": annotator, "time": time.time()}
        self._append(event)
        return event["pair_id"]

    def _stack(self, annotator: str) -> list[dict]:
        self._sync()
        stack = []
        for e in self.events:
            if e["annotator"] != annotator:
                continue
            if e["label"] == "undo":
                for j in range(len(stack) - 1, -1, -1):  # the latest label of that pair
                    if stack[j]["pair_id"] == e["pair_id"]:
                        del stack[j]
                        break
            else:
                stack.append(e)
        return stack

    def labels(self, annotator: str | None = None) -> dict:
        """{annotator: {pair_id: event}}: each annotator's current label per pair (the latest one counts)."""
        self._sync()
        names = [annotator] if annotator else list(dict.fromkeys(e["annotator"] for e in self.events))
        return {a: {e["pair_id"]: e for e in self._stack(a)} for a in names}

    def next_unlabeled(self, annotator: str = "me") -> int | None:
        done = self.labels(annotator)[annotator]
        return next((i for i, p in enumerate(self.pairs) if p["id"] not in done), None)

    def final(self, prefer: tuple = ()) -> dict:
        """One label per pair: the first annotator of `prefer` who labeled it, else any other person's label,
        else the script's. Returns {pair_id: event}."""
        per = self.labels()
        order = list(prefer) + [a for a in per if a not in prefer and not a.startswith("script")] + \
            [a for a in per if a.startswith("script") and a not in prefer]
        out = {}
        for a in order:
            for pid, e in per.get(a, {}).items():
                out.setdefault(pid, e)
        return out


# ---------------------------------------------------------------- export


def preference_rows(store: LabelFile, prefer: tuple = ()) -> list[dict]:
    """TRL preference rows (prompt, chosen, rejected, in chat format) from the final labels; ties and skips
    stay out."""
    rows = []
    for pid, e in store.final(prefer).items():
        if e["chosen"] is None:
            continue
        p = store.pairs[store.index[pid]]
        good, bad = p["answers"][e["chosen"]], p["answers"][1 - e["chosen"]]
        rows.append({"prompt": chat(p["prompt"]), "chosen": [{"role": "assistant", "content": good}],
                     "rejected": [{"role": "assistant", "content": bad}], "pair_id": pid, "source": p["source"],
                     "annotator": e["annotator"]})
    return rows


def to_dataset(store: LabelFile, prefer: tuple = ()):
    """The labels as a `datasets.Dataset` in TRL's preference format, ready for DPOTrainer."""
    return preference_dataset(preference_rows(store, prefer))
