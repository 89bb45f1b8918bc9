"""Same budget, one setting changed: train several arms from one start and measure each the same way.

A comparison is fair when every arm starts from the same weights, sees the same data in the same order and makes
the same number of optimizer updates, of the same size, on the same learning-rate schedule: only the setting under
study differs. `run` trains the arms that way; `budget_table` lays their budgets side by side (`train.budget` for
a TRL trainer, `PPOConfig.budget` for our PPO) and names every line on which arms differ, so no table hides an unequal
budget.
"""
import time


def run(arms: dict, start, measure) -> dict:
    """Train every arm from a fresh `start()` and `measure` it.

    arms: {name: fn(model) -> {"model": the trained model, "budget": its budget, ...anything else to keep}};
    start(): a fresh copy of the starting model (seeded, so every arm begins from the same weights);
    measure(model, name) -> dict. Returns {name: {**what the arm kept, **measure's result, "seconds": training
    time}}. Each arm's model is dropped once measured, so only one is in memory at a time."""
    out = {}
    for name, train_arm in arms.items():
        model = start()
        t0 = time.time()
        kept = train_arm(model)
        seconds = time.time() - t0
        trained = kept.pop("model")
        out[name] = {**kept, **measure(trained, name), "seconds": round(seconds, 1)}
        del model, trained
    return out


def budget_table(runs: dict, varied: tuple = ()):
    """Each arm's budget (rows) side by side, and a note naming the budget lines that differ between arms besides
    the `varied` ones (the setting under study). Returns (DataFrame, note)."""
    import pandas as pd

    table = pd.DataFrame({name: r["budget"] for name, r in runs.items()})
    differ = [k for k in table.index if k not in varied and table.loc[k].astype(str).nunique() > 1]
    note = ("Every arm had the same budget: " + ", ".join(k for k in table.index if k not in varied) + "."
            if not differ else "The arms' budgets differ in: " + ", ".join(differ) + " (read the table with that in mind).")
    return table, note


def side_by_side(results: dict, columns: list[str]):
    """Results side by side: one row per model or arm, one column per metric (a dotted name such as "win.win_rate"
    reaches into a nested result; a missing one is left empty)."""
    import pandas as pd

    def get(r, dotted):
        for key in dotted.split("."):
            r = r.get(key) if isinstance(r, dict) else None
        return r

    return pd.DataFrame({name: {c: get(r, c) for c in columns} for name, r in results.items()}).T.round(3)
