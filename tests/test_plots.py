from postlab import plots


def test_curves_draw_a_sparsely_logged_metric_only_where_it_was_logged():
    history = [{"step": 0, "acc": 0.2}, {"step": 1, "reward": 1.0}, {"step": 2, "reward": 1.5, "acc": 0.6}]
    fig = plots.curves(history, {"reward": "reward", "acc": "held-out accuracy"})
    reward, acc = fig.data
    assert list(reward.x) == [1, 2] and list(acc.x) == [0, 2] and list(acc.y) == [0.2, 0.6]
    assert [a.text for a in fig.layout.annotations] == ["reward", "held-out accuracy"]


def test_the_plain_shapes_draw_what_they_are_given():
    fig = plots.lines({"a": ([1, 2], [0.1, 0.2])}, "t", hline=(0.5, "coin"), right={"s": ([1, 2], [3.0, 4.0])})
    assert [d.name for d in fig.data] == ["a", "s"] and fig.data[1].yaxis == "y2" and len(fig.layout.shapes) == 1
    fig = plots.bars({"win": {"dpo": 0.6, "ipo": 0.4}}, "t", intervals={"win": {"dpo": (0.5, 0.7), "ipo": (0.2, 0.5)}})
    bar = fig.data[0]
    assert list(bar.x) == ["dpo", "ipo"] and [round(v, 3) for v in bar.error_y.array] == [0.1, 0.1]
    assert [round(v, 3) for v in bar.error_y.arrayminus] == [0.1, 0.2]
    fig = plots.points({"m": {"sft": (0.0, 1.0), "ppo": (0.3, 1.2)}}, "t")
    assert list(fig.data[0].text) == ["sft", "ppo"] and list(fig.data[0].x) == [0.0, 0.3]
    fig = plots.arrows({"add": (0.5, 1.0)}, {"add": (0.6, 2.0)}, "t", overall=((0.5, 1.0), (0.6, 2.0)))
    arrow = fig.layout.annotations[0]
    assert (arrow.ax, arrow.ay, arrow.x, arrow.y) == (0.5, 1.0, 0.6, 2.0) and fig.data[-1].name == "overall"
    assert plots.distributions({"right": [1.0, 2.0], "wrong": [0.5]}, "t", kind="histogram").layout.barmode == "overlay"
    assert [d.type for d in plots.distributions({"right": [1.0]}, "t").data] == ["box"]

