"""The user's own data: JSONL or CSV files of demonstrations, preference pairs or prompts.

`load_demonstrations`, `load_pairs` and `load_prompts` validate every row and name the file, the line and the
field of anything wrong, and the fix (`DataError`).
"""
import csv
import io
import json
from pathlib import Path

from .chats import chat

class DataError(ValueError):
    """A data file that cannot be used; the message names the file, the line and the field, and the fix."""


def read_rows(path) -> list[tuple[int, dict]]:
    """(line number, row) pairs from a .jsonl/.json-lines or .csv file, with clear errors.

    Files written by other tools read as the text they hold: a byte-order mark (Windows editors, spreadsheet
    exports) is dropped and Windows line ends (CRLF) are read as line ends. The file must be UTF-8 (ASCII is)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file. Fix: check the path (relative paths start at {Path.cwd()}).")
    if path.suffix.lower() not in (".csv", ".jsonl", ".json", ".ndjson"):
        raise DataError(f"{path}: unknown file type {path.suffix!r}. Fix: use .jsonl or .csv.")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text (byte {e.start} is {e.object[e.start:e.start + 1]!r}; a file saved "
                        "in another encoding, such as Windows-1252 or UTF-16). Fix: save it as UTF-8 (in Excel: "
                        "'CSV UTF-8'; in an editor: encoding UTF-8), or convert it: iconv -f WINDOWS-1252 -t UTF-8 "
                        f"{path.name} > fixed{path.suffix}") from None
    rows = []
    if path.suffix.lower() == ".csv":
        for i, row in enumerate(csv.DictReader(io.StringIO(text, newline="")), start=2):  # line 1 is the header
            rows.append((i, {k.strip(): v for k, v in row.items() if k is not None}))
    else:
        for i, line in enumerate(text.split("\n"), start=1):  # (read_text made every line end a \n)
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: not valid JSON ({e.msg} at column {e.colno}). "
                                "Fix: one JSON object per line (JSONL).") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{i}: expected a JSON object, got {type(row).__name__}.")
            rows.append((i, row))
    if not rows:
        raise DataError(f"{path}: the file has no rows. Fix: add at least one example.")
    return rows


def _text(path, line, row, field) -> str:
    if field not in row:
        raise DataError(f"{path}:{line}: missing field {field!r} (fields present: {sorted(row)}).")
    value = row[field]
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{path}:{line}: field {field!r} must be non-empty text, got {value!r}.")
    return value


def _messages(path, line, row) -> list[dict]:
    msgs = row["messages"]
    if isinstance(msgs, str):  # CSV cell holding JSON
        try:
            msgs = json.loads(msgs)
        except json.JSONDecodeError:
            raise DataError(f"{path}:{line}: field 'messages' is not a JSON list of messages.") from None
    if not isinstance(msgs, list) or not msgs:
        raise DataError(f"{path}:{line}: field 'messages' must be a non-empty list of {{role, content}}.")
    for j, m in enumerate(msgs):
        if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
            raise DataError(f"{path}:{line}: messages[{j}] needs a role of system, user or assistant.")
        if not isinstance(m.get("content"), str) or not m["content"].strip():
            raise DataError(f"{path}:{line}: messages[{j}] has no text in field 'content'.")
    if msgs[-1]["role"] != "assistant":
        raise DataError(f"{path}:{line}: the last message must be the assistant's reply to learn from.")
    if not any(m["role"] == "user" for m in msgs):
        raise DataError(f"{path}:{line}: messages hold no user turn.")
    return [{"role": m["role"], "content": m["content"]} for m in msgs]


def load_demonstrations(path) -> list[dict]:
    """A user's SFT data: rows of (prompt, response) or (messages), as prompt-completion chat rows."""
    out = []
    for line, row in read_rows(path):
        if "messages" in row:
            msgs = _messages(path, line, row)
            out.append({"prompt": msgs[:-1], "completion": msgs[-1:], "kind": "user"})
        elif "prompt" in row or "response" in row:
            prompt, response = _text(path, line, row, "prompt"), _text(path, line, row, "response")
            out.append({"prompt": chat(prompt), "completion": [{"role": "assistant", "content": response}],
                        "kind": "user"})
        else:
            raise DataError(f"{path}:{line}: a row needs 'prompt' and 'response', or 'messages' "
                            f"(fields present: {sorted(row)}).")
    return out


def load_pairs(path) -> list[dict]:
    """A user's preference pairs: rows of (prompt, chosen, rejected) text, as TRL preference rows."""
    out = []
    for line, row in read_rows(path):
        prompt, chosen, rejected = (_text(path, line, row, f) for f in ("prompt", "chosen", "rejected"))
        if chosen.strip() == rejected.strip():
            raise DataError(f"{path}:{line}: 'chosen' and 'rejected' are the same text; a pair must differ.")
        out.append({"prompt": chat(prompt), "chosen": [{"role": "assistant", "content": chosen}],
                    "rejected": [{"role": "assistant", "content": rejected}],
                    "kind": str(row.get("kind", "user"))})
    return out


def load_prompts(path) -> list[dict]:
    """A user's own prompts (.jsonl/.csv rows with 'prompt', optionally 'answer' to let the verifier judge)."""
    out = []
    for line, row in read_rows(path):
        item = {"prompt": _text(path, line, row, "prompt"), "kind": str(row.get("kind", "user"))}
        if row.get("answer") not in (None, ""):
            item["answer"], item["answer_kind"] = str(row["answer"]), row.get("answer_kind", "number")
        out.append(item)
    return out
