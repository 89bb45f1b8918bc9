"""Plotly figures the labs share. Each returns a go.Figure; `save` writes it next to the lab's metrics.

The lab-specific figures (before_after, differences, curves, ...) come first, then five plain shapes
every lab draws with: `lines`, `bars`, `points`, `arrows` and `distributions`, each from plain dicts."""
from pathlib import Path

import plotly.graph_objects as go

BEFORE, AFTER = "#9aa5b1", "#2f6fde"


def loss_curve(log_history: list[dict], title="Training loss") -> go.Figure:
    steps = [h["step"] for h in log_history if "loss" in h]
    loss = [h["loss"] for h in log_history if "loss" in h]
    fig = go.Figure(go.Scatter(x=steps, y=loss, mode="lines+markers", name="loss"))
    return fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss", template="plotly_white")


def curves(history: list[dict], panels: dict, title="Training curves") -> go.Figure:
    """One small line chart per logged metric, against step: panels maps a metric name to its panel title."""
    from plotly.subplots import make_subplots

    cols = 2
    rows = (len(panels) + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(panels.values()))
    for i, key in enumerate(panels):
        points = [(h["step"], h[key]) for h in history if h.get(key) is not None]  # a metric may be logged sparsely
        fig.add_trace(go.Scatter(x=[s for s, _ in points], y=[v for _, v in points], mode="lines+markers", name=key,
                                 showlegend=False), row=i // cols + 1, col=i % cols + 1)
    return fig.update_layout(title=title, height=260 * rows, template="plotly_white")


def before_after(before: dict, after: dict, metric="accuracy", labels=("before", "after"), title=None) -> go.Figure:
    """Grouped bars of one metric per task kind (and overall), for two evaluation results."""
    kinds = list(before["by_kind"]) + ["overall"]

    def values(r):
        return [r["by_kind"][k][metric] for k in kinds[:-1]] + [r[metric]]

    fig = go.Figure([go.Bar(x=kinds, y=values(before), name=labels[0], marker_color=BEFORE),
                     go.Bar(x=kinds, y=values(after), name=labels[1], marker_color=AFTER)])
    rng = [0, 1] if metric in ("accuracy", "format_rate") else None
    return fig.update_layout(title=title or f"{metric} per task kind", barmode="group", yaxis_range=rng,
                             yaxis_title=metric, template="plotly_white")


def differences(results: dict, metrics: list[str], title="Difference from the SFT model, with 95% intervals") -> go.Figure:
    """One panel per metric: each model's paired difference from SFT (`scoreboard.compare_to`'s "vs_sft") as a
    point with its interval. A bar crossing the zero line is no measurable change."""
    from plotly.subplots import make_subplots

    names = [n for n, r in results.items() if "vs_sft" in r]
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=metrics, shared_yaxes=True)
    for i, m in enumerate(metrics, 1):
        d = [results[n]["vs_sft"].get(m) for n in names]
        shown = [(n, x) for n, x in zip(names, d) if x]
        colours = [AFTER if x["verdict"] != "no measurable change" else BEFORE for _, x in shown]
        fig.add_trace(go.Scatter(x=[x["delta"] for _, x in shown], y=[n for n, _ in shown], mode="markers",
                                 marker=dict(color=colours, size=9), showlegend=False,
                                 error_x=dict(type="data", symmetric=False, array=[x["ci"][1] - x["delta"] for _, x in shown],
                                              arrayminus=[x["delta"] - x["ci"][0] for _, x in shown])), row=1, col=i)
        fig.add_vline(x=0, line_dash="dot", row=1, col=i)
    return fig.update_layout(title=title, height=120 + 40 * len(names), template="plotly_white")


# ---------------------------------------------------------------- plain shapes, from plain dicts


def accuracy_against_n(bon: dict, greedy_accuracy: float) -> go.Figure:
    """Lab 02: verifier accuracy of the reward model's pick against N (`reranking.best_of_n`), with the oracle
    (any of N right), one sample, and greedy decoding as a line."""
    ns, by_n = list(bon["by_n"]), bon["by_n"]
    one = sum(bon["one_sample"]) / len(bon["one_sample"])
    oracle = "oracle (any of N correct)"
    return lines({"best-of-N (reward model's pick)": (ns, [by_n[n]["accuracy"] for n in ns]),
                  oracle: (ns, [by_n[n]["oracle"] for n in ns]), "one sample": (ns, [one] * len(ns))},
                 f"Verifier accuracy against N ({len(bon['one_sample'])} held-out problems)", "N", "accuracy",
                 y_range=[0, 1.05], hline=(greedy_accuracy, "greedy SFT"), log_x=True, dashed=(oracle, "one sample"))


def best_of_n_cost(bon: dict) -> go.Figure:
    """Lab 02: the mean reward of the pick and the generation seconds against N."""
    ns = list(bon["by_n"])
    return lines({"mean reward of the pick": (ns, [bon["by_n"][n]["mean_reward"] for n in ns])}, "Reward and cost against N",
                 "N", "reward", log_x=True, right={"generation seconds": (ns, [bon["by_n"][n]["gen_seconds"] for n in ns])},
                 right_title="seconds")


def reward_by_verdict(samples: list[dict]) -> go.Figure:
    """Lab 02: the reward of sampled answers, grouped by the verifier's verdict (right or wrong, house style or not)."""
    groups = {}
    for x in samples:
        verdict = ("correct" if x["correct"] else "wrong") + (", house style" if x["formatted"] else ", other format")
        groups.setdefault(verdict, []).append(x["reward"])
    return distributions({f"{v} ({len(g)})": g for v, g in sorted(groups.items())},
                         "Reward of fresh SFT samples, by what the verifier says", "reward")


def reward_vs_accuracy(before: dict, after: dict, labels=("SFT", "PPO"), score="rm_score", accuracy="accuracy",
                       answers="greedy") -> go.Figure:
    """Each task kind moves from its (verifier accuracy, reward-model score) before to after, and so does the whole:
    a kind whose reward rises while its accuracy falls is reward hacking in plain sight. `score` and `accuracy` name
    the keys (lab 03 also keeps "sampled_rm_score" and "sampled_accuracy"); `answers` says which answers they score."""
    def where(r):
        return (r[accuracy], r[score])

    return arrows({k: where(v) for k, v in before["by_kind"].items()}, {k: where(after["by_kind"][k]) for k in before["by_kind"]},
                  f"Reward-model score against verifier accuracy ({answers} answers), {labels[0]} to {labels[1]}",
                  "accuracy (verifier)", "reward-model score", overall=(where(before), where(after)))


def reward_against_kl(series: dict, title="Reward against KL to the SFT model", kl="kl", score="rm_score") -> go.Figure:
    """{series: {label: result}}, each result holding its KL to the SFT model (`kl` names the key) and its score."""
    return points({name: {label: (r[kl], r[score]) for label, r in pts.items()} for name, pts in series.items()},
                  title, "KL(policy || SFT) per answer", "reward-model score")


def scoreboard_panels(board: dict) -> dict[str, go.Figure]:
    """Lab 07: one grouped bar chart per family of metrics, {file name: figure}, from `scoreboard.metrics_table`."""
    panels = {"quality": (["accuracy", "format_rate", "shift_accuracy"], "Held-out accuracy, format, and accuracy under shift", [0, 1]),
              "pitfalls": (["sycophancy_rate", "refusal_rate", "harmful_refusal_rate"], "Pitfalls: agreeing with wrong claims, refusing", [0, 1]),
              "length": (["mean_length"], "Mean reply length (tokens)", None),
              "rm_score": (["rm_score"], "Reward-model score of held-out replies", None)}
    return {f"scoreboard_{key}": bars({m: {n: row.get(m) for n, row in board.items()} for m in metrics}, title, y_range=y_range)
            for key, (metrics, title, y_range) in panels.items()}


def judge_confusion(judged: list[dict], title: str) -> go.Figure:
    """Lab 06 (AI feedback): one 2x2 table per principle, over both orders of every pair: where the reply that
    follows the principle was shown (rows) against what the judge picked (columns). A judge that reads the answers
    fills the diagonal; one that reads only the position fills one column."""
    from plotly.subplots import make_subplots

    names = list(dict.fromkeys(j["principle"] for j in judged))
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names)
    for c, name in enumerate(names, 1):
        odds = [j["log_odds"] for j in judged if j["principle"] == name]  # [good shown as A, good shown as B]
        z = [[sum(x > 0 for x, _ in odds), sum(x <= 0 for x, _ in odds)], [sum(y > 0 for _, y in odds), sum(y <= 0 for _, y in odds)]]
        fig.add_trace(go.Heatmap(z=z, x=["picks A", "picks B"], y=["better is A", "better is B"], text=z, texttemplate="%{text}",
                                 colorscale="Blues", showscale=False), row=1, col=c)
    return fig.update_layout(title=title, height=320, template="plotly_white")


def _layout(fig: go.Figure, title, x_title=None, y_title=None, y_range=None, hline=None, **more) -> go.Figure:
    if hline is not None:  # (y, label): a reference level, e.g. the SFT model's value or a coin's 0.5
        fig.add_hline(y=hline[0], line_dash="dot", line_color="grey", annotation_text=hline[1])
    return fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, yaxis_range=y_range,
                             template="plotly_white", **more)


def lines(series: dict, title: str, x_title="", y_title="", y_range=None, hline=None, log_x=False, dashed=(),
          right: dict | None = None, right_title="") -> go.Figure:
    """One line per series, {name: (xs, ys)}; `dashed` names the series drawn dashed; `right` holds series read
    on a second y-axis (e.g. seconds next to a reward)."""
    fig = go.Figure([go.Scatter(x=list(xs), y=list(ys), name=name, mode="lines+markers",
                                line_dash="dash" if name in dashed else None) for name, (xs, ys) in series.items()])
    for name, (xs, ys) in (right or {}).items():
        fig.add_trace(go.Scatter(x=list(xs), y=list(ys), name=name, mode="lines+markers", yaxis="y2"))
    more = {"yaxis2": dict(title=right_title, overlaying="y", side="right")} if right else {}
    if log_x:
        more["xaxis_type"] = "log"
    return _layout(fig, title, x_title, y_title, y_range, hline, **more)


def bars(groups: dict, title: str, y_title="", y_range=None, hline=None, intervals: dict | None = None) -> go.Figure:
    """Grouped bars, {series: {x label: value}}; `intervals` {series: {x label: (low, high)}} adds error bars."""
    fig = go.Figure()
    for name, values in groups.items():
        error = None
        if intervals and name in intervals:
            ci = intervals[name]
            error = dict(type="data", symmetric=False, array=[ci[x][1] - v for x, v in values.items()],
                         arrayminus=[v - ci[x][0] for x, v in values.items()])
        fig.add_trace(go.Bar(x=list(values), y=list(values.values()), name=name, error_y=error,
                             marker_color=AFTER if len(groups) == 1 else None))
    return _layout(fig, title, None, y_title, y_range, hline, barmode="group")


def points(series: dict, title: str, x_title="", y_title="") -> go.Figure:
    """Labelled points, {series: {label: (x, y)}}: one marker per label, named on the chart."""
    fig = go.Figure([go.Scatter(x=[x for x, _ in pts.values()], y=[y for _, y in pts.values()], text=list(pts),
                                mode="markers+text", textposition="top center", name=name, marker=dict(size=11))
                     for name, pts in series.items()])
    return _layout(fig, title, x_title, y_title, showlegend=len(series) > 1)


def arrows(start: dict, end: dict, title: str, x_title="", y_title="", overall=None) -> go.Figure:
    """Each label moves from start[label] = (x, y) to end[label]; `overall` ((x0, y0), (x1, y1)) is drawn as a line."""
    fig = go.Figure()
    for label, (x0, y0) in start.items():
        x1, y1 = end[label]
        fig.add_annotation(x=x1, y=y1, ax=x0, ay=y0, xref="x", yref="y", axref="x", ayref="y", showarrow=True,
                           arrowhead=3, arrowwidth=1.5, arrowcolor=AFTER)
        fig.add_trace(go.Scatter(x=[x0], y=[y0], mode="markers+text", text=[label], textposition="bottom center",
                                 marker_color=BEFORE, showlegend=False))
    if overall:
        (x0, y0), (x1, y1) = overall
        fig.add_trace(go.Scatter(x=[x0, x1], y=[y0, y1], mode="lines+markers", name="overall", line_color="black"))
    return _layout(fig, title, x_title, y_title)


def distributions(groups: dict, title: str, value_title="", kind="box") -> go.Figure:
    """{name: values}: box plots with every point shown ("box"), or overlaid histograms ("histogram")."""
    if kind == "histogram":
        fig = go.Figure([go.Histogram(x=list(v), name=name, opacity=0.7) for name, v in groups.items()])
        return _layout(fig, title, value_title, None, barmode="overlay")
    fig = go.Figure([go.Box(y=list(v), name=name, boxpoints="all", jitter=0.4) for name, v in groups.items()])
    return _layout(fig, title, None, value_title)


def save(fig: go.Figure, lab_dir, name: str) -> Path:
    """Write the figure as Plotly JSON in the lab's folder (the report embeds it; `plotly.io.read_json` reads it)."""
    path = Path(lab_dir) / f"{name}.plotly.json"
    fig.write_json(path)
    return path
