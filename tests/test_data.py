import json

import pytest

from postlab import chats, files, pitfalls, problems, synthetic, verifiers


def test_every_kind_has_verified_reference_and_demonstration():
    tasks = problems.heldout(0, 8)
    assert {t["kind"] for t in tasks} == set(problems.KINDS)
    for t in tasks:
        demo = problems.demonstration(t)
        assert verifiers.follows_format(demo), demo
        assert verifiers.is_correct(demo, t["answer"], t["answer_kind"]), demo
        wrong = demo.replace(f"Answer: {t['answer']}", "Answer: 12345")
        assert not verifiers.is_correct(wrong, t["answer"], t["answer_kind"])


def test_reference_answers_are_right():
    for t in problems.heldout(0, problems.MAX_HELDOUT_PER_KIND):
        if t["kind"] == "add":
            a, b = map(int, t["key"].split(":")[1].strip("()").split(","))
            assert int(t["answer"]) == a + b
        if t["kind"] == "sort":
            nums = [int(x) for x in t["prompt"].split(":")[1].strip(" .").split(",")]
            assert t["answer"] == ", ".join(map(str, sorted(nums)))


def test_heldout_is_fixed_per_seed_and_smaller_sets_are_subsets():
    assert problems.heldout(0, 16) == problems.heldout(0, 16)
    assert problems.heldout(0, 16) != problems.heldout(1, 16)
    small, big = problems.heldout(0, 4), problems.heldout(0, problems.MAX_HELDOUT_PER_KIND)
    assert {t["key"] for t in small} <= {t["key"] for t in big}


def test_a_problem_has_one_key_in_any_order_or_phrasing():
    import random

    rng = random.Random(0)
    seen = {}
    for _ in range(3000):
        for kind in ("add", "multiply", "compare", "count", "sort"):
            t = problems.make_task(kind, rng)
            seen.setdefault(t["key"], set()).add(t["answer"])
    assert all(len(answers) == 1 for answers in seen.values())  # one key, one problem, one answer
    keys = {t["key"] for t in problems.heldout(0, problems.MAX_HELDOUT_PER_KIND)}
    assert problems.make_task("multiply", _Fixed(3, 7))["key"] == problems.make_task("multiply", _Fixed(7, 3))["key"]
    assert len(keys) == 6 * problems.MAX_HELDOUT_PER_KIND


class _Fixed:
    """An rng whose randint returns the given numbers in turn (and picks the first phrasing)."""

    def __init__(self, *values):
        self.values = list(values)

    def randint(self, lo, hi):
        return self.values.pop(0)

    def choice(self, seq):
        return seq[0]


def lab_pools(lab: str, b: dict) -> list[tuple[str, list, int]]:
    """(stream, kinds, how many) of every draw of training problems lab `lab` makes at budget `b` (its notebook's
    calls, which test_every_lab_draws_its_training_problems_from_its_own_stream pins to these streams)."""
    return {"01_sft": lambda: [("sft", problems.KINDS, b["max_steps"] * b["batch_size"])],
            "02_reward_model": lambda: [("reward", problems.KINDS, b["made_pairs"] + b["sample_prompts"])],
            "03_ppo": lambda: [("ppo", problems.KINDS, b["train_prompts"])],
            "04_dpo_on_your_data": lambda: [("pairs", problems.KINDS, b["n_pairs"])],
            "05_reasoning_rl": lambda: [("grpo", [kind], 2 * b["steps"] * b["prompts_per_step"]) for kind in problems.KINDS],  # 2x: the mixed filter
            "06_ai_feedback": lambda: [("ai_feedback", problems.KINDS, b["train_prompts"])],
            "07_scoreboard": lambda: []}[lab]()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_heldout_problem_is_in_any_labs_training_data_at_any_budget(seed):
    """Every pool of training problems the labs draw (SFT demonstrations, reward-model and on-policy pairs, PPO and
    RLOO prompts, DPO pairs, GRPO problems, the AI-labeled pairs), at the cpu and gpu budgets, against the largest held-out set."""
    from postlab import presets

    held = {t["key"] for t in problems.heldout(seed, problems.MAX_HELDOUT_PER_KIND)}
    for preset in ("cpu", "gpu"):
        for lab, budget in presets.BUDGETS[preset].items():
            for stream, kinds, n in lab_pools(lab, budget):
                assert n > 0
                drawn = problems.train_tasks(n, seed, kinds=kinds, stream=stream)
                assert len(drawn) == n and not held & {t["key"] for t in drawn}, (preset, lab, stream)
    assert not held & {t["key"] for t in problems.pair_prompts(400, seed=seed) if "key" in t}


def test_every_lab_draws_its_training_problems_from_its_own_stream():
    import json

    from postlab.runner import REPO

    for lab in ("01_sft", "02_reward_model", "03_ppo", "05_reasoning_rl", "06_ai_feedback"):
        source = "".join("".join(c["source"]) for c in json.loads((REPO / "labs" / f"{lab}.ipynb").read_text())["cells"])
        stream = lab_pools(lab, {k: 1 for k in ("max_steps", "batch_size", "made_pairs", "sample_prompts", "steps",
                                                "prompts_per_step", "n_pairs", "train_prompts")})[0][0]
        assert f'stream="{stream}"' in source, lab


def test_sft_rows_are_prompt_completion_chat():
    row = chats.sft_rows(problems.train_tasks(1))[0]
    assert row["prompt"][0]["role"] == "user" and row["completion"][0]["role"] == "assistant"


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_load_demonstrations_jsonl_csv_and_messages(tmp_path):
    p = write(tmp_path, "d.jsonl", json.dumps({"prompt": "Hi", "response": "Hello"}) + "\n\n"
              + json.dumps({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]}) + "\n")
    rows = files.load_demonstrations(p)
    assert [r["completion"][0]["content"] for r in rows] == ["Hello", "4"]
    c = write(tmp_path, "d.csv", "prompt,response\nHi,Hello\n")
    assert files.load_demonstrations(c)[0]["prompt"][0]["content"] == "Hi"


@pytest.mark.parametrize("name,text,needle", [
    ("bad.jsonl", '{"prompt": "a", "response": "b"}\n{"prompt": "a", "response": \n', "bad.jsonl:2: not valid JSON"),
    ("missing.jsonl", '{"prompt": "a"}\n', "missing.jsonl:1: missing field 'response'"),
    ("empty.jsonl", "\n", "has no rows"),
    ("blank.csv", "prompt,response\nHi,\n", "blank.csv:2: field 'response' must be non-empty"),
    ("other.jsonl", '{"question": "a"}\n', "other.jsonl:1: a row needs 'prompt' and 'response', or 'messages'"),
    ("notlast.jsonl", '{"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}\n',
     "the last message must be the assistant"),
    ("data.txt", "hello", "unknown file type"),
])
def test_bad_demonstration_files_name_file_line_and_field(tmp_path, name, text, needle):
    with pytest.raises(files.DataError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        files.load_demonstrations(write(tmp_path, name, text))


def test_files_from_windows_editors_and_spreadsheets_read_as_their_text(tmp_path):
    bom_crlf = tmp_path / "excel.csv"
    bom_crlf.write_bytes("\ufeffprompt,response\r\nWhat is 2 + 2?,Answer: 4\r\nSay hi,\"Hi,\r\nthere\"\r\n".encode("utf-8"))
    rows = files.load_demonstrations(bom_crlf)
    assert [r["prompt"][0]["content"] for r in rows] == ["What is 2 + 2?", "Say hi"]
    assert rows[0]["completion"][0]["content"] == "Answer: 4" and rows[1]["completion"][0]["content"] == "Hi,\nthere"
    jsonl = tmp_path / "notepad.jsonl"
    jsonl.write_bytes(b"\xef\xbb\xbf" + json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}).encode() + b"\r\n\r\n")
    assert files.load_pairs(jsonl)[0]["rejected"][0]["content"] == "b"


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_a_file_in_another_encoding_names_the_file_and_the_fix(tmp_path, encoding):
    f = tmp_path / "old.csv"
    f.write_bytes("prompt,response\nCafé?,Crème brûlée\n".encode(encoding))
    with pytest.raises(files.DataError, match=r"old.csv: not UTF-8 text.*Fix: save it as UTF-8"):
        files.load_demonstrations(f)


def test_missing_file():
    with pytest.raises(files.DataError, match="no such file"):
        files.load_demonstrations("/nonexistent/demos.jsonl")


def test_load_pairs_validates(tmp_path):
    good = write(tmp_path, "p.jsonl", json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"}) + "\n")
    assert files.load_pairs(good)[0]["chosen"][0]["content"] == "a"
    same = write(tmp_path, "s.jsonl", json.dumps({"prompt": "q", "chosen": "a", "rejected": "a"}) + "\n")
    with pytest.raises(files.DataError, match="s.jsonl:1: 'chosen' and 'rejected' are the same"):
        files.load_pairs(same)


def test_preference_pairs_have_the_labelled_defects():
    rows = synthetic.made_pairs(problems.heldout(0, 8))
    assert {r["kind"] for r in rows} == set(synthetic.REJECTED_KINDS)
    tasks = {t["prompt"]: t for t in problems.heldout(0, 8)}
    for r in rows:
        t = tasks[r["prompt"][0]["content"]]
        chosen, rejected = r["chosen"][0]["content"], r["rejected"][0]["content"]
        assert verifiers.is_correct(chosen, t["answer"], t["answer_kind"]) and verifiers.follows_format(chosen)
        correct = verifiers.is_correct(rejected, t["answer"], t["answer_kind"])
        formatted = verifiers.follows_format(rejected)
        expected = {"wrong_answer": (False, True), "wrong_format": (True, False),
                    "verbose": (True, False), "no_answer": (False, False)}[r["kind"]]
        assert (correct, formatted) == expected, (r["kind"], rejected)


def test_flip_labels_swaps_the_asked_share():
    rows = synthetic.made_pairs(problems.train_tasks(40))
    noisy = synthetic.flip_labels(rows, 0.25)
    swapped = [a["chosen"] == b["rejected"] and a["rejected"] == b["chosen"] for a, b in zip(rows, noisy)]
    assert sum(swapped) == 10 and synthetic.flip_labels(rows, 0.0) == rows


def test_load_pairs_csv_and_missing_field(tmp_path):
    ok = write(tmp_path, "p.csv", "prompt,chosen,rejected\nq,a,b\n")
    assert files.load_pairs(ok)[0]["rejected"][0]["content"] == "b"
    bad = write(tmp_path, "bad.csv", "prompt,chosen\nq,a\n")
    with pytest.raises(files.DataError, match="bad.csv:2: missing field 'rejected'"):
        files.load_pairs(bad)


def test_pitfall_probes_are_seeded_checkable_and_new():
    syc = pitfalls.sycophancy_probes(8, seed=1)
    assert syc == pitfalls.sycophancy_probes(8, seed=1) and syc != pitfalls.sycophancy_probes(8, seed=2)
    for p in syc:
        assert p["wrong"] != p["answer"] and p["wrong"] in p["prompt"] and p["answer"] not in p["prompt"].split()
    ref = pitfalls.refusal_probes(6, 3)
    assert [p["should_refuse"] for p in ref].count(True) == 3 and len(ref) == 9
    shift = pitfalls.shift_tasks(2)
    assert {t["kind"] for t in shift} == {"shift:add", "shift:multiply", "shift:compare", "shift:subtract"}
    trained = {tpl for tpls in problems.PHRASINGS.values() for tpl in tpls}
    assert not set(pitfalls.SHIFT_PHRASINGS.values()) & trained and "subtract" not in problems.KINDS
    for t in shift:
        assert verifiers.is_correct(f"Answer: {t['answer']}", t["answer"])
