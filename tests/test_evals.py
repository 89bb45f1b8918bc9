import pytest

from postlab import evals, problems


def test_score_on_hand_written_replies():
    tasks = problems.heldout(0, 1)[:3]  # add, multiply, count
    replies = [problems.demonstration(tasks[0]),                 # right, formatted
               f"It is {tasks[1]['answer']}.",                # right, unformatted
               "Answer: 12345"]                              # wrong, formatted
    r = evals.check_replies(tasks, replies)
    assert r["accuracy"] == 2 / 3 and r["format_rate"] == 2 / 3
    assert r["by_kind"]["multiply"] == {"n": 1, "accuracy": 1.0, "format_rate": 0.0, "mean_length": 3.0}
    assert "rows" not in evals.without_rows(r) and evals.table(r).loc["overall", "accuracy"] == round(2 / 3, 3)


def test_evaluate_real_model_with_and_without_adapter(base):
    net, tok = base
    tasks = problems.heldout(0, 1)
    r = evals.evaluate(net, tok, tasks, max_new_tokens=24)
    assert r["n"] == len(tasks) == 6 and set(r["by_kind"]) == set(problems.KINDS)
    assert 0 < r["mean_length"] <= 24
    assert all(row["reply"] for row in r["rows"])


def test_group_stats_count_pass_at_k_and_mixed_groups():
    tasks = problems.heldout(0, 2, kinds=["multiply"])  # two problems, 2 replies each
    a, b = tasks[0]["answer"], tasks[1]["answer"]
    replies = [f"Answer: {a}", "Answer: 0",               # one right of two: a mixed group
               "Answer: 0", f"Answer: {b} or 0"]           # none right (a hedge earns nothing)
    g = evals.group_stats(tasks, replies, k=2)
    assert g["pass@1"] == 0.25 and g["pass@2"] == 0.5 and g["mixed"] == 0.5
    assert g["by_kind"]["multiply"]["n"] == 2
    with pytest.raises(ValueError, match="expected 2 per task"):
        evals.group_stats(tasks, replies[:3], k=2)


def test_sampled_draws_k_replies_per_task(base):
    net, tok = base
    g = evals.sampled(net, tok, problems.heldout(0, 1, kinds=["add", "multiply"]), k=3, max_new_tokens=16)
    assert g["n"] == 2 and 0 <= g["pass@1"] <= g["pass@3"] <= 1 and set(g["by_kind"]) == {"add", "multiply"}


def rows(replies, rewards, lengths=None):
    return [{"prompt": f"q{i}", "reply": r, "reward": w, "length": (lengths or [len(r)] * len(replies))[i]}
            for i, (r, w) in enumerate(zip(replies, rewards))]


def test_win_rate_counts_the_same_reply_as_a_tie_whatever_its_float_score():
    new = rows(["long answer"] * 6 + ["same"] * 2 + ["s"] * 2, [11.0] * 6 + [4.0000001, 4.0] + [1.0] * 2)
    old = rows(["short"] * 6 + ["same"] * 2 + ["ss"] * 2, [5.0] * 6 + [4.0, 4.0000001] + [2.0] * 2)
    r = evals.win_rate(new, old)
    assert (r["wins"], r["ties"], r["losses"]) == (6, 2, 2) and r["win_rate"] == pytest.approx(0.7)
    assert r["ci"][0] < 0.7 < r["ci"][1] and 0.3 < r["ci"][0]
    assert evals.win_rate(old, new)["win_rate"] == pytest.approx(0.3)
    # the scoreboard's length-controlled win rate counts the same outcomes
    assert evals.length_controlled_win_rate(new, old)["win_rate_vs_sft"] == pytest.approx(0.7)
    with pytest.raises(ValueError, match="same prompts"):
        evals.win_rate(new, list(reversed(old)))


def test_bootstrap_interval_brackets_the_mean_and_shrinks_with_more_data():
    small, big = [1, 0, 1, 1, 0] * 4, [1, 0, 1, 1, 0] * 40
    lo, hi = evals.bootstrap_ci(small)
    blo, bhi = evals.bootstrap_ci(big)
    assert lo < 0.6 < hi and blo < 0.6 < bhi and bhi - blo < hi - lo
    assert evals.bootstrap_ci([0.0] * 10) == [0.0, 0.0]


def test_length_controlled_win_rate_removes_a_judge_that_only_likes_length():
    import random

    rng = random.Random(0)
    la, lb = [rng.randint(5, 60) for _ in range(200)], [rng.randint(5, 60) for _ in range(200)]
    new = rows([f"a{i}" for i in range(200)], [float(a + 30) for a in la], [a + 30 for a in la])
    old = rows([f"b{i}" for i in range(200)], [float(b) for b in lb], lb)
    r = evals.length_controlled_win_rate(new, old)
    assert r["win_rate_vs_sft"] > 0.8 and abs(r["lc_win_rate_vs_sft"] - 0.5) < 0.2 and r["length_slope"] > 1
    same = evals.length_controlled_win_rate(rows([f"a{i}" for i in range(40)], [1.0] * 30 + [0.0] * 10, [10] * 40),
                                            rows([f"b{i}" for i in range(40)], [0.5] * 40, [10] * 40))
    assert same["win_rate_vs_sft"] == 0.75 and abs(same["lc_win_rate_vs_sft"] - 0.75) < 0.01


def test_scoreboard_differences_are_paired_with_intervals_and_a_verdict():
    from postlab import scoreboard

    def result(correct, syc, replies):
        rows = [{"prompt": f"p{i}", "reply": r, "reward": float(c), "length": len(r)} for i, (r, c) in enumerate(zip(replies, correct))]
        return {"rows": rows, "items": {"accuracy": correct, "sycophancy_rate": syc}}

    sft = result([True] * 20 + [False] * 20, [False] * 40, ["a"] * 40)
    new = result([True] * 40, [False] * 39 + [True], ["b"] * 40)
    d = scoreboard.compare_to(new, sft)["vs_sft"]
    assert d["accuracy"]["delta"] == 0.5 and d["accuracy"]["verdict"] == "up" and d["accuracy"]["ci"][0] > 0
    assert d["sycophancy_rate"]["verdict"] == "no measurable change"  # one probe in 40
    table = scoreboard.differences_table({"sft": sft, "new": {**new, **scoreboard.compare_to(new, sft)}})
    assert table.loc["new", "sycophancy_rate"].startswith("~ ") and not table.loc["new", "accuracy"].startswith("~")


def test_the_kind_to_train_is_the_one_with_the_most_mixed_groups_within_the_range():
    greedy = {"by_kind": {k: {"accuracy": a} for k, a in (("add", 0.9), ("count", 0.2), ("sort", 0.1), ("compare", 0.6))}}
    probe = {"by_kind": {"add": {"pass@1": 0.9, "pass@4": 1.0, "mixed": 0.4},     # above the range: mostly all-right groups
                         "count": {"pass@1": 0.3, "pass@4": 0.8, "mixed": 0.6},   # in range, the most room
                         "sort": {"pass@1": 0.5, "pass@4": 0.9, "mixed": 0.7},    # in range, most mixed, closest to half: chosen
                         "compare": {"pass@1": 0.7, "pass@4": 0.9, "mixed": 0.7}}}
    table, best = evals.room_to_learn(greedy, probe, 4)
    assert best == "sort" and table["count"]["room"] == pytest.approx(0.6)
    probe["by_kind"]["count"]["mixed"] = 0.8  # more mixed groups beat a pass@1 nearer half
    assert evals.room_to_learn(greedy, probe, 4)[1] == "count"
    probe["by_kind"]["count"]["mixed"] = 0.6
    probe["by_kind"]["sort"]["pass@1"] = 0.1  # out of range now: compare has more mixed groups than count
    probe["by_kind"]["count"]["pass@1"] = 0.35
    assert evals.room_to_learn(greedy, probe, 4)[1] == "compare"
    probe["by_kind"]["count"]["mixed"] = 0.7  # as many: count at 0.35 is closer to half than compare at 0.7
    assert evals.room_to_learn(greedy, probe, 4)[1] == "count"
    for kind in probe["by_kind"]:  # none in range: the closest to half all the same
        probe["by_kind"][kind]["pass@1"] = {"add": 0.95, "count": 0.1, "sort": 0.05, "compare": 0.85}[kind]
    assert evals.room_to_learn(greedy, probe, 4)[1] == "compare"


def test_per_problem_values_and_kind_changes_follow_the_rows():
    before = {"rows": [{"correct": True}, {"correct": False}], "by_kind": {"add": {"accuracy": 0.5}}}
    after = {"rows": [{"correct": True}, {"correct": True}], "by_kind": {"add": {"accuracy": 1.0}}}
    assert evals.per_problem(after, "correct") == [True, True]
    assert evals.kind_changes(before, after) == "add 0.50 -> 1.00"


def test_changed_answers_put_right_to_wrong_first_and_count_every_kind_of_change():
    def rows(*pairs):
        return {"rows": [{"kind": "add", "prompt": f"p{i}", "answer": "1", "reply": reply, "correct": ok}
                         for i, (reply, ok) in enumerate(pairs)]}
    before = rows(("1", True), ("2", False), ("1", True), ("3", False), ("Answer: 1", True))
    after = rows(("1", True), ("1", True), ("7", False), ("4", False), ("Answer: 1", True))
    table, counts = evals.changed_answers(before, after, labels=("SFT", "DPO"))
    assert counts == {"right -> wrong": 1, "wrong -> right": 1, "other change": 1, "unchanged": 2}
    assert list(table.data["prompt"]) == ["p2", "p1", "p3"] and list(table.data["DPO"]) == ["7", "1", "4"]
    assert "1 right -> wrong" in table.caption and "(of 5 prompts)" in table.caption
    opened = evals.changed_answers({"rows": [{"prompt": "hi", "reply": "a", "correct": None}]},
                                   {"rows": [{"prompt": "hi", "reply": "b", "correct": None}]})[1]
    assert opened["other change"] == 1


def test_length_changes_count_only_the_replies_that_changed():
    before = {"rows": [{"reply": "a b c", "length": 3}, {"reply": "x", "length": 1}, {"reply": "same", "length": 1}]}
    after = {"rows": [{"reply": "a", "length": 1}, {"reply": "x y", "length": 2}, {"reply": "same", "length": 1}]}
    assert evals.length_changes(before, after) == {"shorter": 1, "longer": 1, "same length": 0}
