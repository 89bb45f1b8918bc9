"""How much of each lab notebook is the story and how much is showing and bookkeeping (issue 18).

`python tests/notebook_counts.py` prints a table. Every statement of the code cells (the parameters cell and
docstrings left out; a def, for, if or with counts through the statements inside it) is one of:
- postlab: a call into the package: training, measuring, and also a figure or table the package draws
  (plots.*, lab.show, evals.table, headlines.conclude ...), which the notebook only places;
- presentation: showing done in the notebook itself: print, display of what the notebook built, pandas tables
  built inline, bare expressions, closing sentences formatted in the notebook;
- bookkeeping: imports, del, files written, metrics assembly and lab.finish;
- other: plain Python (the torch of a hand computation, a loop, a name).
"strict" also counts the package-drawn figures and tables as presentation.
"""
import ast
import json
import sys
from pathlib import Path

PACKAGE = {"annotators", "chats", "compare", "evals", "files", "headlines", "labels", "models", "pitfalls", "plots",
           "postlab", "ppo", "presets", "problems", "reranking", "rewards", "scoreboard", "synthetic", "train",
           "verifiers", "widgets", "lab", "start_lab"}
DRAWN = {"lab.show", "evals.table", "chats.preview_rows", "labels.preview_pairs", "headlines.conclude",
         "compare.side_by_side", "compare.budget_table"}
KINDS = ("postlab", "presentation", "bookkeeping", "other")


def calls(node) -> set[str]:
    """Names called in a statement: `f` for f(...), and `m` and `m.f` for m.f(...) or m.a.f(...)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            while isinstance(f, ast.Attribute):
                f = f.value
            if isinstance(f, ast.Name):
                out.add(f.id)
                if isinstance(n.func, ast.Attribute):
                    out.add(f"{f.id}.{n.func.attr}")
    return out


def kind(stmt) -> tuple[str, bool]:
    """(kind, shows): the statement's kind, and whether it shows something (the strict count)."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.Delete)):
        return "bookkeeping", False
    called, src = calls(stmt), ast.unparse(stmt)
    drawn = bool(called & DRAWN) or any(c.startswith("plots.") for c in called)
    if drawn and "print" not in called:
        return "postlab", True
    if called & {"print", "display"} or src.startswith("notes") or "pd.DataFrame" in src:
        return "presentation", True
    if called & {"lab.finish", "lab.write_rows", "json.dumps"} or ".save_pretrained" in src or src.startswith("metrics"):
        return "bookkeeping", False
    if {c.split(".")[0] for c in called} & PACKAGE:
        return "postlab", False
    if isinstance(stmt, ast.Expr):
        return "presentation", True
    return "other", False


def statements(body):
    for s in body:
        if isinstance(s, (ast.FunctionDef, ast.For, ast.If, ast.With, ast.While, ast.Try)):
            for field in ("body", "orelse", "finalbody"):
                yield from statements(getattr(s, field, []) or [])
            for h in getattr(s, "handlers", []):
                yield from statements(h.body)
        elif not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant) and isinstance(s.value.value, str)):
            yield s


def code_cells(path) -> list[str]:
    cells = json.loads(Path(path).read_text())["cells"]
    return ["".join(c["source"]) for c in cells
            if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])]


def count(path) -> dict:
    """Statements by kind, the strict count, code lines and the longest cell's lines of one notebook."""
    out = dict.fromkeys(KINDS, 0) | {"strict": 0, "lines": 0, "longest": 0}
    for src in code_cells(path):
        n = len([line for line in src.split("\n") if line.strip() and not line.strip().startswith("#")])
        out["lines"] += n
        out["longest"] = max(out["longest"], n)
        for s in statements(ast.parse(src).body):
            k, shows = kind(s)
            out[k] += 1
            out["strict"] += shows or k == "bookkeeping"
    out["statements"] = sum(out[k] for k in KINDS)
    out["presentation_and_bookkeeping"] = (out["presentation"] + out["bookkeeping"]) / out["statements"]
    return out


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[1])
    print("| notebook | statements | postlab | presentation | bookkeeping | other | presentation + bookkeeping | strict "
          "| code lines | longest cell |\n|---|---|---|---|---|---|---|---|---|---|")
    for nb in sorted(root.glob("labs/*.ipynb")):
        c = count(nb)
        print(f"| {nb.name} | {c['statements']} | " + " | ".join(f"{c[k]} ({c[k] / c['statements']:.0%})" for k in KINDS)
              + f" | **{c['presentation_and_bookkeeping']:.0%}** | {c['strict'] / c['statements']:.0%} | {c['lines']} "
              f"| {c['longest']} |")
