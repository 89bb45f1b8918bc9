from postlab import data, evals


def test_score_on_hand_written_replies():
    tasks = data.heldout(0, 1)[:3]  # add, multiply, count
    replies = [data.demonstration(tasks[0]),                 # right, formatted
               f"It is {tasks[1]['answer']}.",                # right, unformatted
               "Answer: 12345"]                              # wrong, formatted
    r = evals.score(tasks, replies)
    assert r["accuracy"] == 2 / 3 and r["format_rate"] == 2 / 3
    assert r["by_kind"]["multiply"] == {"n": 1, "accuracy": 1.0, "format_rate": 0.0, "mean_length": 3.0}
    assert "rows" not in evals.headline(r) and evals.table(r).loc["overall", "accuracy"] == round(2 / 3, 3)


def test_evaluate_real_model_with_and_without_adapter(base):
    net, tok = base
    tasks = data.heldout(0, 1)
    r = evals.evaluate(net, tok, tasks, max_new_tokens=24)
    assert r["n"] == len(tasks) == 6 and set(r["by_kind"]) == set(data.KINDS)
    assert 0 < r["mean_length"] <= 24
    assert all(row["reply"] for row in r["rows"])
