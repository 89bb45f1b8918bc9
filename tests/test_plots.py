from postlab import plots


def test_curves_draw_a_sparsely_logged_metric_only_where_it_was_logged():
    history = [{"step": 0, "acc": 0.2}, {"step": 1, "reward": 1.0}, {"step": 2, "reward": 1.5, "acc": 0.6}]
    fig = plots.curves(history, {"reward": "reward", "acc": "held-out accuracy"})
    reward, acc = fig.data
    assert list(reward.x) == [1, 2] and list(acc.x) == [0, 2] and list(acc.y) == [0.2, 0.6]
    assert [a.text for a in fig.layout.annotations] == ["reward", "held-out accuracy"]
