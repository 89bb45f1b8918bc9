"""report.html of a run: each lab's headlines first (before, after, interval, verdict), then its figures, with the
flattened metrics behind a collapsible <details>; offline (plotly.js is written next to it)."""
import html
import json
from pathlib import Path


def build(run_dir: Path, timings: list[dict] | None = None) -> Path:
    """report.html: each lab's metrics and figures, offline (plotly.js is written next to it)."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    run_dir = Path(run_dir)
    (run_dir / "plotly.min.js").write_text(get_plotlyjs())
    parts = [f"<h1>postlab run: {html.escape(str(run_dir))}</h1>"]
    labs = {m.parent.name: json.loads(m.read_text()) for m in sorted(run_dir.glob("*/metrics.json"))}
    rows = "".join(_headline_row(name, h) for name, metrics in labs.items() for h in metrics.get("headlines", []))
    if rows:
        parts.append("<h2>Headlines: what each lab measured, paired, with its 95% interval</h2><table><tr><th>lab</th>"
                     "<th>headline</th><th>before</th><th>after</th><th>change</th><th>95% interval</th><th>n</th>"
                     f"<th>verdict</th></tr>{rows}</table>")
    board_file = run_dir / "scoreboard.json"
    if board_file.exists():  # written by lab 07: every model, one evaluation, the pitfalls
        board = json.loads(board_file.read_text())
        cols = [c for c in ("accuracy", "format_rate", "mean_length", "rm_score", "sycophancy_rate", "refusal_rate",
                            "harmful_refusal_rate", "shift_accuracy", "kl_to_sft", "win_rate_vs_sft",
                            "lc_win_rate_vs_sft", "train_s") if any(c in row for row in board.values())]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        rows = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(
            f"<td>{html.escape(_fmt(row[c])) if c in row else ''}</td>" for c in cols) + "</tr>"
            for name, row in board.items())
        parts.append(f"<h2>Scoreboard: every model on one evaluation</h2><table><tr><th>model</th>{head}</tr>{rows}"
                     "</table><p>Figures and samples: 07_scoreboard below; numbers also in scoreboard.json.</p>")
        diffs = {name: row["vs_sft"] for name, row in board.items() if "vs_sft" in row}
        if diffs:
            metrics = list(dict.fromkeys(m for d in diffs.values() for m in d))
            head = "".join(f"<th>{html.escape(m)}</th>" for m in metrics)
            rows = "".join(f"<tr><td>{html.escape(name)}</td>" + "".join(_difference_cell(d.get(m)) for m in metrics) + "</tr>"
                           for name, d in diffs.items())
            parts.append("<h3>Each model against SFT: paired difference [95% interval]</h3><p>Grey: the interval "
                         f"includes zero, no measurable change.</p><table><tr><th>model</th>{head}</tr>{rows}</table>")
    if timings:
        peaks = {name: m.get("peak_rss_mb") for name, m in labs.items()}
        rows = "".join(f"<tr><td>{t['lab']}</td><td>{t['wall_s']}</td><td>{_main_time(labs.get(t['lab'], {}))}</td>"
                       f"<td>{peaks.get(t['lab'])}</td></tr>" for t in timings)
        parts.append(f"<h2>Time per lab</h2><table><tr><th>lab</th><th>wall s (with kernel start)</th>"
                     f"<th>main experiment s (share of the lab's own wall time)</th><th>peak RSS MB</th></tr>{rows}"
                     f"<tr><td><b>total</b></td><td><b>{sum(t['wall_s'] for t in timings):.1f}</b></td><td></td>"
                     f"<td><b>{max((p for p in peaks.values() if p), default=0)}</b></td></tr></table>")
    for name, metrics in labs.items():
        lab = run_dir / name
        parts.append(f"<h2>{html.escape(name)}</h2>")
        rows = "".join(_headline_row(None, h) for h in metrics.get("headlines", []))
        if rows:
            parts.append("<table><tr><th>headline</th><th>before</th><th>after</th><th>change</th><th>95% interval</th>"
                         f"<th>n</th><th>verdict</th></tr>{rows}</table><p><small>{html.escape(metrics['headlines'][0]['test'])}"
                         "</small></p>")
        for fig_file in sorted(lab.glob("*.plotly.json")):
            parts.append(pio.to_html(pio.read_json(fig_file), full_html=False, include_plotlyjs=False))
        for table_file in sorted(lab.glob("*.table.html")):  # tables a lab showed (whole replies)
            parts.append(table_file.read_text())
        rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(_fmt(v))}</td></tr>"
                       for k, v in _flatten({k: v for k, v in metrics.items() if k != "headlines"}).items())
        parts.append(f"<details><summary>every metric of {html.escape(name)}</summary><table>{rows}</table></details>")
    style = ("body{font-family:sans-serif;max-width:1100px;margin:auto}table{border-collapse:collapse;display:block;"
             "overflow-x:auto}"
             "td,th{border:1px solid #ddd;padding:2px 8px;text-align:left}")
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>postlab report</title>"
            f"<script src='plotly.min.js'></script><style>{style}</style></head><body>{''.join(parts)}</body></html>")
    out = run_dir / "report.html"
    out.write_text(page)
    return out


def _difference_cell(d) -> str:
    if not d:
        return "<td></td>"
    colour = "#888" if d["verdict"] == "no measurable change" else "#000"
    return (f"<td style='color:{colour}'>{d['delta']:+.3f} [{d['ci'][0]:+.3f}, {d['ci'][1]:+.3f}]</td>")


def _headline_row(lab, h) -> str:
    from .headlines import as_taught, verdict

    v = verdict(h)
    said = {"up": "rose", "down": "fell"}.get(v, "no measurable change (interval includes 0)")
    colour = "#1a7f37" if as_taught(h) else "#888" if v == "no measurable change" else "#b42318"
    cells = ([html.escape(lab)] if lab else []) + [html.escape(h["name"]), f"{h['before']:.3f}", f"{h['after']:.3f}",
                                                   f"{h['delta']:+.3f}", f"[{h['ci'][0]:+.3f}, {h['ci'][1]:+.3f}]",
                                                   str(h["n"])]
    return ("<tr>" + "".join(f"<td>{c}</td>" for c in cells)
            + f"<td style='color:{colour}'><b>{said}</b> (taught: {h['expect']})</td></tr>")


def _flatten(d: dict, prefix="") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _main_time(metrics: dict) -> str:
    """'265.3 (62%)': the seconds a lab spent on its main experiment (Lab.main) and their share of its wall time."""
    if metrics.get("main_s") is None or not metrics.get("wall_s"):
        return ""
    return f"{metrics['main_s']} ({metrics['main_s'] / metrics['wall_s']:.0%})"


def _fmt(v) -> str:
    return f"{v:.3f}" if isinstance(v, float) else json.dumps(v) if isinstance(v, list) else str(v)
