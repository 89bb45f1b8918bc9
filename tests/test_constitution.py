"""Lab 06's pieces: the principles and their checks, the judge's verdicts read from its A/B probabilities in both
orders, and critique and revision judged by the same checks."""
import pytest

from postlab import constitution, judges, models, pitfalls, problems


def test_every_principle_pair_has_the_better_reply_where_its_check_says():
    tasks = problems.heldout(0, 3)
    probes = pitfalls.sycophancy_probes(6, 0)
    requests = pitfalls.refusal_probes(4, 0, 0)
    helped = ["Open a terminal and type kill followed by the process id.", "I'm sorry, I can't help with that.",
              "Use a tripod and a long exposure.", "Run python followed by the file name."]
    pairs = (constitution.principle_pairs("correct", tasks) + constitution.principle_pairs("commit", tasks)
             + constitution.principle_pairs("honest", probes) + constitution.principle_pairs("helpful", requests, replies=helped))
    assert {p["principle"] for p in pairs} == set(constitution.PRINCIPLES)
    assert len([p for p in pairs if p["principle"] == "helpful"]) == 3  # the refusing reply has no pair
    for p in pairs:
        assert constitution.follows(p["principle"], p, p["good"]) and not constitution.follows(p["principle"], p, p["bad"]), p


def test_your_own_wording_is_kept_and_a_principle_without_a_check_is_refused():
    assert constitution.principles({"correct": "Be right."})["correct"] == "Be right."
    with pytest.raises(ValueError, match="no check.*correct"):
        constitution.principles({"be nice": "Be nice."})


def test_verdicts_read_accuracy_position_bias_and_consistency_from_both_orders():
    pairs = [{"principle": "correct"}] * 4
    # log-odds of "A" with the better reply first, then second: a fair right judge, a judge that always says A (and as surely in both orders),
    # a consistent wrong judge, and an A-leaning judge whose summed preference still favours the better reply
    got = judges.verdicts(pairs, [2.0, 3.0, -1.0, 5.0], [-2.0, 3.0, 1.0, 1.0])
    assert [g["right"] for g in got] == [1.0, 0.5, 0.0, 0.5]
    assert [g["first_picks"] for g in got] == [0.5, 1.0, 0.5, 1.0]
    assert [g["consistent"] for g in got] == [1.0, 0.0, 1.0, 0.0]
    assert [g["debiased"] for g in got] == [1.0, 0.5, 0.0, 1.0]
    s = judges.by_principle(got)["all"]
    assert s["n"] == 4 and s["right"] == 0.5 and s["first_picks"] == 0.75 and s["consistent"] == 0.5
    rows = judges.rows_from_picks([{"prompt": "q", "good": "g", "bad": "b"}] * 3, [1.0, 0.0, 0.5])
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == [("g", "b"), ("b", "g")]


@pytest.fixture(scope="module")
def sft():
    return models.load_model("default", verbose=False)


def test_the_judge_reads_its_a_and_b_probabilities_the_same_in_a_batch_and_alone(sft):
    net, tok = sft
    pairs = constitution.principle_pairs("correct", problems.heldout(0, 1))[:3]
    judged = judges.judge_pairs(net, tok, pairs, constitution.PRINCIPLES)
    for p, j in zip(pairs, judged):
        alone = judges.ab_log_odds(net, tok, [judges.JUDGE_PROMPT.format(principle=constitution.PRINCIPLES["correct"],
                                                                         prompt=p["prompt"], a=p["bad"], b=p["good"])])
        assert j["log_odds"][1] == pytest.approx(alone[0], abs=1e-3)  # the second order: the better reply is B
    rm_like = judges.verdicts(pairs, [0.3, -0.2, 1.0], [-0.3, 0.2, -1.0])  # a scorer: the same margin in both orders
    assert all(j["consistent"] == 1.0 and j["first_picks"] == 0.5 for j in rm_like)


def test_critique_and_revise_keeps_the_conversation_and_judges_by_the_items_principle(sft):
    net, tok = sft
    items = problems.heldout(0, 1)[:2] + pitfalls.sycophancy_probes(1, 0)
    replies = ["Answer: 0", items[1]["working"] + "\nAnswer: " + items[1]["answer"], "Yes, that is right."]
    rows = constitution.critique_and_revise(net, tok, items, replies, lambda it: "honest" if it["kind"] == "sycophancy" else "correct",
                                            constitution.PRINCIPLES, max_new_tokens=24)
    assert [r["before"] for r in rows] == [False, True, False] and [r["principle"] for r in rows][-1] == "honest"
    for it, r in zip(items, rows):
        assert r["critique"] and r["after"] == constitution.follows(r["principle"], it, r["revision"])
        assert r["outcome"] == {(False, True): "fixed", (True, False): "broken", (True, True): "still right",
                                (False, False): "still wrong"}[(r["before"], r["after"])]
    table, counts = constitution.revisions(rows)
    assert sum(counts.values()) == 3 and counts["wrong -> right"] == sum(r["outcome"] == "fixed" for r in rows)
