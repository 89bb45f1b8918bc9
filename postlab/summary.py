"""Several runs side by side: the results table of the README and docs/results, written from the runs' metrics.

`postlab summarize RUN_DIR ...` prints it (Markdown). A run is a folder written by `postlab run` (one folder per
lab, each with its metrics.json) or a copy of one in docs/results (one `<lab>.metrics.json` per lab).
"""
import json
import sys
from pathlib import Path

from .headlines import as_taught, verdict


def lab_metrics(run_dir) -> dict:
    """{lab name: its metrics.json} of one run, in lab order, whichever of the two layouts it uses."""
    run_dir = Path(run_dir)
    found = {p.parent.name: p for p in run_dir.glob("[0-9][0-9]_*/metrics.json")}
    found.update({p.name[:-len(".metrics.json")]: p for p in run_dir.glob("[0-9][0-9]_*.metrics.json")})
    if not found:
        raise FileNotFoundError(f"{run_dir} holds no lab's metrics.json. Fix: pass the folder of a run made by "
                                "`postlab run` (or a copy of one in docs/results).")
    return {lab: json.loads(found[lab].read_text()) for lab in sorted(found)}


def _cell(h: dict | None) -> str:
    if h is None:
        return ""
    v = verdict(h)
    said = f"**{v}**" if as_taught(h) else "n.s." if v == "no measurable change" else f"{v} (untaught)"
    return f"{h['delta']:+.3f} [{h['ci'][0]:+.3f}, {h['ci'][1]:+.3f}] {said}"


def results_table(run_dirs) -> str:
    """One row per headline (lab and name), one column per run: the paired change, its 95% interval and the verdict
    (bold where the interval excludes zero in the direction the lab teaches), n, and how many runs cleared it. Then
    one row per lab of wall time and the main experiment's share."""
    runs = [(Path(d).name, lab_metrics(d)) for d in run_dirs]
    names = [name for name, _ in runs]
    rows = {}  # (lab, place in its list) -> {run: headline}; names can hold a run's choices (lab 05's kind)
    for run, labs in runs:
        for lab, m in labs.items():
            for i, h in enumerate(m.get("headlines", [])):
                rows.setdefault((lab, i), {})[run] = h
    head = ["lab", "headline", *names, "n", "cleared"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (lab, _), by_run in sorted(rows.items()):
        cleared = sum(as_taught(h) for h in by_run.values())
        ns = sorted({h["n"] for h in by_run.values()})
        name = " / ".join(dict.fromkeys(h["name"] for h in by_run.values()))
        lines.append("| " + " | ".join([lab, name, *[_cell(by_run.get(r)) for r in names], "/".join(map(str, ns)),
                                        f"{cleared} of {len(by_run)}"]) + " |")
    lines += ["", "| lab | " + " | ".join(f"{r}: wall s (main share)" for r in names) + " |", "|---|" + "---|" * len(names)]
    for lab in sorted({lab for _, labs in runs for lab in labs}):
        cells = []
        for _, labs in runs:
            m = labs.get(lab, {})
            share = f" ({m['main_s'] / m['wall_s']:.0%})" if m.get("main_s") and m.get("wall_s") else ""
            cells.append(f"{m['wall_s']:.0f}{share}" if m.get("wall_s") else "")
        lines.append(f"| {lab} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def cli(argv) -> None:
    """postlab summarize RUN_DIR ...: the results table of these runs, as Markdown, on stdout."""
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: postlab summarize RUN_DIR [RUN_DIR ...]\n\nThe runs' headlines side by side (Markdown): the paired "
              "change, its 95% interval and verdict per run, and how many runs cleared each.")
        return
    try:
        sys.stdout.write(results_table(argv))
    except FileNotFoundError as e:
        sys.exit(f"postlab summarize: {e}")
