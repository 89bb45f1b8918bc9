"""Labeling without a browser: the labels file, the widget's clicks and keys, undo, resume, export, bad files,
statistics and the scripted annotator."""
import json

import pytest

from postlab import annotators, files, labels, problems
from postlab.widgets import Labeler

PAIRS = [
    {"id": "p0", "prompt": "What is 2 + 3?", "answers": ["Answer: 5", "Answer: 6"], "source": "add", "answer": "5",
     "answer_kind": "number"},
    {"id": "p1", "prompt": "What is 4 x 2?", "answers": ["I think it is 8, hope that helps!", "Answer: 8"],
     "source": "multiply", "answer": "8", "answer_kind": "number"},
    {"id": "p2", "prompt": "Name a colour.", "answers": ["Blue.", "Red is a warm colour."], "source": "open"},
    {"id": "p3", "prompt": "Say hi.", "answers": ["Hi!", "Hello there, friend."], "source": "open"},
]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "labels.jsonl"


def events(path):
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def test_clicks_and_keys_are_on_disk_at_once_with_swap_and_winner(path):
    w = Labeler(labels.LabelFile(path, PAIRS))
    assert (w.position, w.labeled, w.total) == (0, 0, 4)
    left = w.left
    w.act("A")  # a click on "A is better"
    e = events(path)
    assert len(e) == 1 and e[0]["pair_id"] == "p0" and e[0]["label"] == "A" and e[0]["annotator"] == "me"
    assert e[0]["swap"] == labels.swapped("p0") and PAIRS[0]["answers"][e[0]["chosen"]] == left
    right = w.right
    w.press("B")  # the key B
    e = events(path)
    assert e[-1]["pair_id"] == "p1" and PAIRS[1]["answers"][e[-1]["chosen"]] == right
    w.press("x")  # not a shortcut: nothing happens
    assert len(events(path)) == 2 and w.position == 2
    w.press("t")
    assert events(path)[-1]["label"] == "tie" and events(path)[-1]["chosen"] is None and w.labeled == 3


def test_left_and_right_follow_the_recorded_swap(path):
    w = Labeler(labels.LabelFile(path, PAIRS))
    seen = set()
    for p in PAIRS:
        swap = labels.swapped(p["id"])
        seen.add(swap)
        assert (w.left, w.right) == ((p["answers"][1], p["answers"][0]) if swap else tuple(p["answers"]))
        w.act("skip")
    assert seen == {True, False}  # these four pairs show both orders
    assert w.finished and w.labeled == 4


def test_undo_takes_back_the_last_label_and_shows_that_pair(path):
    store = labels.LabelFile(path, PAIRS)
    w = Labeler(store)
    w.act("A")
    w.act("B")
    w.press("u")
    assert w.pair_id == "p1" and w.labeled == 1
    assert events(path)[-1]["label"] == "undo"  # appended, nothing rewritten
    assert len(events(path)) == 3
    w.act("tie")
    assert store.labels("me")["me"]["p1"]["label"] == "tie"
    w.act("undo"), w.act("undo")
    assert w.pair_id == "p0" and w.labeled == 0
    w.act("undo")
    assert w.status == "Nothing to undo."


def test_restart_resumes_at_first_unlabeled_pair(path):
    w = Labeler(labels.LabelFile(path, PAIRS))
    w.act("A"), w.act("skip")
    del w  # "restart the kernel": only the file survives
    w2 = Labeler(labels.LabelFile(path, PAIRS))
    assert w2.position == 2 and w2.labeled == 2 and "Resuming" in w2.status
    w2.act("B"), w2.act("B")
    assert w2.finished
    assert Labeler(labels.LabelFile(path, PAIRS)).finished


@pytest.mark.parametrize("content, needle", [
    ("not json at all\n", "not a postlab labels file"),
    ('{"prompt": "x", "chosen": "y", "rejected": "z"}\n', "not a postlab labels file"),
])
def test_foreign_file_is_refused_and_left_untouched(path, content, needle):
    path.write_text(content)
    with pytest.raises(labels.LabelFileError, match=needle) as err:
        labels.LabelFile(path, PAIRS)
    assert "left as it is" in str(err.value) and path.read_text() == content


def test_labels_of_other_pairs_and_corrupt_lines_are_refused(path):
    store = labels.LabelFile(path, PAIRS)
    store.add("p0", "A")
    before = path.read_bytes()
    with pytest.raises(labels.LabelFileError, match="another set of pairs"):
        labels.LabelFile(path, PAIRS[:3])
    path.write_bytes(before + b'{"pair_id": "p1", "label": "A", "annotator": me}\n')  # complete, but not JSON
    with pytest.raises(labels.LabelFileError, match=r"labels.jsonl:3: not valid JSON"):
        labels.LabelFile(path, PAIRS)
    path.write_bytes(before + b'{"pair_id": "nope", "label": "A", "annotator": "me"}\n')
    snapshot = path.read_bytes()
    with pytest.raises(labels.LabelFileError, match=r":3: not a label event"):
        labels.LabelFile(path, PAIRS)
    assert path.read_bytes() == snapshot  # the reader never writes


def test_a_line_cut_short_by_a_crash_is_skipped_and_labeling_goes_on(path):
    store = labels.LabelFile(path, PAIRS)
    store.add("p0", "A")
    store.add("p1", "B")
    path.write_bytes(path.read_bytes() + b'{"pair_id": "p2", "lab')  # the kernel died mid-write
    with pytest.warns(UserWarning, match="cut short"):
        resumed = labels.LabelFile(path, PAIRS)
    assert set(resumed.labels("me")["me"]) == {"p0", "p1"} and resumed.next_unlabeled("me") == 2
    resumed.add("p2", "tie")  # appending goes on, on a line of its own
    with pytest.warns(UserWarning, match="cut short"):
        again = labels.LabelFile(path, PAIRS)
    assert set(again.labels("me")["me"]) == {"p0", "p1", "p2"} and again.labels("me")["me"]["p2"]["label"] == "tie"
    assert path.read_bytes().endswith(b"\n")


def test_two_objects_on_one_file_see_each_others_labels(path):
    """The labeler widget and the notebook's scripted-annotator cell hold two LabelFile objects: a click made after
    the scripted cell ran must be in the export when the export runs again."""
    widget_store = labels.LabelFile(path, PAIRS)
    w = Labeler(widget_store)
    notebook_store = labels.LabelFile(path, PAIRS)
    annotators.scripted_labels(notebook_store)
    assert {r["pair_id"] for r in labels.preference_rows(notebook_store, ("me", "script"))} == {"p0", "p1"}
    assert w.pair_id == "p0"
    w.act("A" if labels.swapped("p0") else "B")  # the person, unlike the script, prefers p0's second answer
    rows = {r["pair_id"]: r for r in labels.preference_rows(notebook_store, ("me", "script"))}
    assert rows["p0"]["annotator"] == "me" and rows["p0"]["chosen"][0]["content"] == "Answer: 6"


def _create(path):
    labels.LabelFile(path, PAIRS)


def test_two_creators_at_once_write_one_header(tmp_path):
    import multiprocessing

    for i in range(5):
        path = tmp_path / f"labels{i}.jsonl"
        ctx = multiprocessing.get_context("fork")
        procs = [ctx.Process(target=_create, args=(path,)) for _ in range(6)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        assert all(p.exitcode == 0 for p in procs)
        assert len(path.read_text().splitlines()) == 1


def test_pairs_file_round_trip_and_bad_rows(tmp_path):
    f = tmp_path / "pairs.jsonl"
    labels.save_pairs(PAIRS, f)
    assert labels.load_pairs_file(f) == PAIRS
    f.write_text(f.read_text() + "\n" + json.dumps({"id": "p9", "prompt": "x", "answers": ["one"]}) + "\n")
    with pytest.raises(files.DataError, match=r"pairs.jsonl:6: a pair needs 'id', 'prompt' and two 'answers'"):
        labels.load_pairs_file(f)
    f.write_text('{"id": "p0", "prompt"\n')
    with pytest.raises(files.DataError, match=r"pairs.jsonl:1: not valid JSON"):
        labels.load_pairs_file(f)


def test_export_is_trl_preference_format_without_ties_and_skips(path):
    store = labels.LabelFile(path, PAIRS)
    w = Labeler(store)
    for action in ["A", "B", "tie", "skip"]:
        w.act(action)
    ds = labels.to_dataset(store)
    assert ds.column_names == ["prompt", "chosen", "rejected"] and len(ds) == 2
    by_prompt = {r["prompt"][0]["content"]: r for r in ds}
    for e in events(path)[:2]:
        pair = PAIRS[int(e["pair_id"][1])]
        row = by_prompt[pair["prompt"]]
        assert row["chosen"] == [{"role": "assistant", "content": pair["answers"][e["chosen"]]}]
        assert row["rejected"][0]["content"] == pair["answers"][1 - e["chosen"]]


def test_cohen_kappa():
    assert annotators.cohen_kappa([0, 0, 1, 1], [0, 1, 1, 1]) == pytest.approx(0.5)
    assert annotators.cohen_kappa([0, 1, "tie"], [0, 1, "tie"]) == pytest.approx(1.0)
    assert annotators.cohen_kappa([0, 1], [1, 0]) == pytest.approx(-1.0)
    assert annotators.cohen_kappa([], []) is None


def test_stats_counts_length_bias_and_agreement(path):
    store = labels.LabelFile(path, PAIRS)
    sw = {p["id"]: labels.swapped(p["id"]) for p in PAIRS}
    screen = lambda pid, idx: "A" if (idx == 1) == sw[pid] else "B"  # noqa: E731 the label that picks answer idx
    for pid, idx in [("p0", 0), ("p1", 1), ("p2", 1), ("p3", 1)]:  # the longer answer wins p2 and p3, not p1
        store.add(pid, screen(pid, idx), "me", sw[pid])
    for pid, idx in [("p0", 0), ("p1", 0), ("p2", 1)]:
        store.add(pid, screen(pid, idx), "ann", sw[pid])
    s = annotators.stats(store)
    assert s["labeled"] == 4 and s["source"] == {"me": 4} and s["ties"] == 0
    assert s["longer_won"] == pytest.approx(2 / 3)  # p0's answers have the same length: left out
    k = s["kappa"]["me vs ann"]
    assert k["pairs"] == 3 and k["kappa"] == pytest.approx(annotators.cohen_kappa([0, 1, 1], [0, 0, 1]))


def test_scripted_annotator_uses_the_verifier_and_leaves_people_alone(path):
    store = labels.LabelFile(path, PAIRS)
    store.add("p2", "tie", "me", labels.swapped("p2"))
    n = annotators.scripted_labels(store)  # no reward model: open prompts become ties
    assert n == 3
    final = store.final()
    assert final["p0"]["chosen"] == 0 and final["p1"]["chosen"] == 1  # right answer, then house format
    assert final["p2"]["annotator"] == "me" and final["p3"]["label"] == "tie"
    assert annotators.stats(store)["source"] == {"me": 1, "script": 3}
    assert annotators.scripted_labels(store) == 0  # nothing left to do


def test_scripted_annotator_noise_flips_coins(tmp_path):
    many = [{**PAIRS[0], "id": f"q{i}"} for i in range(200)]
    store = labels.LabelFile(tmp_path / "l.jsonl", many)
    annotators.scripted_labels(store, noise=0.5, seed=1)
    wrong = sum(e["chosen"] == 1 for e in store.final().values())
    assert 25 < wrong < 80  # about a quarter: half are coin flips, half of those land wrong


def test_pair_prompts_are_new_problems_and_open_prompts():
    items = problems.pair_prompts(50, open_share=0.2)
    assert sum(i["kind"] == "open" for i in items) == 10
    held = {t["key"] for t in problems.heldout(0, problems.MAX_HELDOUT_PER_KIND)}
    sft = {t["key"] for t in problems.train_tasks(320, 0, stream="sft")}
    keys = [i["key"] for i in items if "key" in i]
    # new problems, mostly: only 28 multiplication facts are left once the held-out ones are out, and SFT saw them all
    assert not held & set(keys) and len(set(keys) - sft) >= 0.6 * len(keys)


def test_load_prompts(tmp_path):
    f = tmp_path / "p.jsonl"
    f.write_text('{"prompt": "What is 2 + 2?", "answer": 4}\n{"prompt": "Tell me a joke."}\n')
    items = files.load_prompts(f)
    assert items[0]["answer"] == "4" and "answer" not in items[1]
    f.write_text('{"question": "x"}\n')
    with pytest.raises(files.DataError, match=r"p.jsonl:1: missing field 'prompt'"):
        files.load_prompts(f)


def test_the_concise_taste_prefers_the_clearly_shorter_answer_only_after_the_verifier(path):
    right_long = "First 4 x 2 is four twos, which makes 8 in all\nAnswer: 8"
    pairs = [{"id": "a", "prompt": "What is 4 x 2?", "answers": [right_long, "Answer: 9"], "source": "multiply",
              "answer": "8", "answer_kind": "number"},  # right beats short
             {"id": "b", "prompt": "What is 4 x 2?", "answers": [right_long, "4 x 2 = 8\nAnswer: 8"], "source": "multiply",
              "answer": "8", "answer_kind": "number"},  # both right: the shorter
             {"id": "c", "prompt": "Say hi.", "answers": ["Hello to you all!", "Hi to you all!"], "source": "open"},  # close: tie
             {"id": "d", "prompt": "Say hi.", "answers": ["Hello there, my dear friend, how are you?", "Hi!"], "source": "open"}]
    store = labels.LabelFile(path, pairs)
    annotators.scripted_labels(store, shorter=0.8)
    chosen = {pid: e["chosen"] for pid, e in store.final().items()}
    assert chosen == {"a": 0, "b": 1, "c": None, "d": 1}


def test_decided_pairs_keep_only_what_the_taste_decides_and_by_source_counts_final_labels():
    right_wrong = {"prompt": "What is 2 + 2?", "answer": "4", "answer_kind": "number",
                   "answers": ["2 + 2 = 5\nAnswer: 5", "2 + 2 = 4\nAnswer: 4"]}
    same = {"prompt": "Say hi.", "answer": None, "answers": ["hi", "hi!"]}
    rows = annotators.decided_pairs([right_wrong, same])
    assert rows == [{"prompt": "What is 2 + 2?", "chosen": "2 + 2 = 4\nAnswer: 4", "rejected": "2 + 2 = 5\nAnswer: 5"}]
    final = {"a": {"annotator": "me", "label": "A"}, "b": {"annotator": "me", "label": "tie"},
             "c": {"annotator": "script", "label": "skip"}}
    assert annotators.by_source(final) == {"me": {"decided": 1, "tie": 1, "skip": 0}, "script": {"decided": 0, "tie": 0, "skip": 1}}
