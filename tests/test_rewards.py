import pytest

from postlab import annotators, problems, reranking, rewards, synthetic
from postlab.models import ModelNotFoundError


@pytest.fixture(scope="module")
def rm(tmp_path_factory):
    """The reward backbone with its fresh (untrained) scoring head, saved and loaded back like a trained one."""
    net, tok = rewards.load_reward_base("default")
    path = tmp_path_factory.mktemp("rm") / "reward_model"
    rewards.save_reward_model(net, tok, path)
    return net, tok, path


def test_scores_are_independent_of_batching_and_survive_save_and_load(rm):
    net, tok, path = rm
    prompts = ["What is 2 + 2?", "Sort: 3, 1, 2.", "Which is larger, 10 or 20?"]
    answers = ["Answer: 4", "I would rather not guess, because this depends on many things.", "20"]
    one = [rewards.score(net, tok, [p], [a])[0] for p, a in zip(prompts, answers)]
    together = rewards.score(net, tok, prompts, answers, batch_size=3)
    assert together == pytest.approx(one, abs=1e-4)
    loaded, ltok = rewards.load_reward_model(path)
    assert rewards.score(loaded, ltok, prompts, answers) == pytest.approx(together, abs=1e-4)
    assert len(set(round(x, 4) for x in together)) == 3  # different answers, different scores


def test_pairwise_accuracy_counts_chosen_over_rejected(rm):
    net, tok, _ = rm
    rows = synthetic.made_pairs(problems.heldout(0, 1))
    result = rewards.pairwise_accuracy(net, tok, rows)
    wins = [c > r for c, r in zip(result["chosen_rewards"], result["rejected_rewards"])]
    assert result["accuracy"] == sum(wins) / len(rows)
    swapped = rewards.pairwise_accuracy(net, tok, synthetic.flip_labels(rows, 1.0))
    assert swapped["accuracy"] == pytest.approx(1 - result["accuracy"])


def test_another_judge_reranks_the_same_samples_and_relabels_the_same_pairs(rm):
    net, tok, _ = rm
    prompts = ["What is 2 + 2?", "What is 3 + 3?"]
    replies = [["Answer: 5", "Answer: 4", "I cannot say."], ["Answer: 6", "Answer: 7", "Answer: 6"]]
    groups = [[{"reply": r, "correct": r == ("Answer: 4" if i == 0 else "Answer: 6")} for r in g] for i, g in enumerate(replies)]
    picks = reranking.rerank(groups, prompts, net, tok, 2)
    for i, g in enumerate(groups):  # the judge's favourite of the first two, by its own scores
        scores = rewards.score(net, tok, [prompts[i]] * 2, [x["reply"] for x in g[:2]])
        assert picks[i] == float(g[reranking.favourite(scores, 2)]["correct"])
    rows = [{"prompt": [{"role": "user", "content": p}], "chosen": [{"role": "assistant", "content": a}],
             "rejected": [{"role": "assistant", "content": b}], "pair_id": str(i)}
            for i, (p, a, b) in enumerate(zip(prompts * 2, ["Answer: 4", "Answer: 7", "Answer: 5", "Answer: 6"],
                                               ["Answer: 5", "Answer: 6", "Answer: 4", "Answer: 7"]))]
    relabeled, kept = annotators.reward_model_labels(rows, net, tok)
    for r, new, k in zip(rows, relabeled, kept):
        c, j = rewards.score(net, tok, [r["prompt"]] * 2, [r["chosen"][0]["content"], r["rejected"][0]["content"]])
        assert k == float(c >= j) and new["chosen"] == (r["chosen"] if c >= j else r["rejected"])
        assert {new["chosen"][0]["content"], new["rejected"][0]["content"]} == {r["chosen"][0]["content"], r["rejected"][0]["content"]}
    pairs = [{"id": str(i), "answer": ["4", "6"][i % 2], "answer_kind": "number",
              "answers": [r["chosen"][0]["content"], r["rejected"][0]["content"]]} for i, r in enumerate(rows)]
    assert annotators.verifier_agreement(rows, pairs) == [1.0, 0.0, 0.0, 1.0]  # the rows that chose the right answer
    pairs[0]["answer"] = None  # an open prompt: the verifier cannot tell, the row is left out
    assert annotators.verifier_agreement(rows, pairs) == [0.0, 0.0, 1.0]


def test_missing_reward_model_says_which_lab_makes_it(tmp_path):
    with pytest.raises(ModelNotFoundError, match="02_reward_model"):
        rewards.load_reward_model(tmp_path / "nothing")


def test_on_policy_pairs_reject_only_what_the_verifier_marks_wrong(base):
    from postlab import verifiers

    net, tok = base
    tasks = problems.heldout(0, 1)
    rows = rewards.on_policy_pairs(net, tok, tasks, k=2, max_new_tokens=24, seed=0)
    assert rows, "the raw model gets some of six problems wrong"
    by_prompt = {t["prompt"]: t for t in tasks}
    for r in rows:
        t = by_prompt[r["prompt"][0]["content"]]
        assert r["kind"] == "sampled_wrong"
        assert not verifiers.is_correct(r["rejected"][0]["content"], t["answer"], t["answer_kind"])
        chosen = r["chosen"][0]["content"]
        assert verifiers.is_correct(chosen, t["answer"], t["answer_kind"]) and verifiers.follows_format(chosen)


def test_add_scores_puts_rewards_per_reply_per_kind_and_overall():
    from postlab import evals

    tasks = problems.heldout(0, 2)[:4]  # two 'add', two 'multiply'
    result = rewards.add_scores(evals.check_replies(tasks, ["Answer: 1"] * 4), [1.0, 3.0, 5.0, 7.0])
    assert [r["reward"] for r in result["rows"]] == [1.0, 3.0, 5.0, 7.0]
    assert result["rm_score"] == 4.0
    assert result["by_kind"]["add"]["rm_score"] == 2.0 and result["by_kind"]["multiply"]["rm_score"] == 6.0
    with pytest.raises(ValueError):  # one score per reply, no more, no less
        rewards.add_scores(evals.check_replies(tasks, ["x"] * 4), [1.0])


def test_on_policy_pairwise_counts_right_over_wrong_per_problem_and_skips_one_sided_groups():
    groups = [[{"reward": 2.0, "correct": True}, {"reward": 1.0, "correct": False}, {"reward": 3.0, "correct": False}],
              [{"reward": 1.0, "correct": True}, {"reward": 1.0, "correct": True}],  # all right: no pair
              [{"reward": 0.5, "correct": True}, {"reward": 0.5, "correct": False}]]  # a tie counts a half
    assert reranking.on_policy_pairwise(groups) == [0.5, 0.5]


def test_best_of_n_picks_the_highest_reward_among_the_first_n():
    assert reranking.favourite([0.1, 0.9, 2.0], 2) == 1
    assert reranking.favourite([0.5, 0.5, 0.1], 3) == 0  # the first on a tie


def test_reward_up_accuracy_down_names_only_the_kinds_where_both_moved_apart():
    before = {"by_kind": {"count": {"rm_score": -1.6, "accuracy": 0.75}, "add": {"rm_score": 0.5, "accuracy": 0.5}}}
    after = {"by_kind": {"count": {"rm_score": -0.8, "accuracy": 0.5}, "add": {"rm_score": 0.9, "accuracy": 0.75}}}
    assert rewards.reward_up_accuracy_down(before, after) == {"count": {"rm_score": [-1.6, -0.8], "accuracy": [0.75, 0.5]}}
