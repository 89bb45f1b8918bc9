"""A lab's headline effects: what moved, by how much, with a 95% interval, and what the run can and cannot say.

Every lab measures its one or two headline effects paired (the same held-out problems before and after) and
writes them to metrics.json as `headlines`, a list of
    {"name", "before", "after", "delta", "ci": [low, high], "n", "test", "expect"}
`delta` is after - before (or a quantity minus its null), `ci` a 95% interval of `delta`, `test` how it was
computed, `expect` the direction the lab teaches ("up" or "down"). A delta whose interval includes zero is
"no measurable change". `conclude` prints a lab's closing section from these numbers, so no outcome is ever
written into a notebook's text in advance.
"""
from .evals import bootstrap_ci

TEST = "paired bootstrap over problems, 2000 resamples"


def paired(name: str, before, after, expect: str = "up", unit: str = "problems") -> dict:
    """A headline from per-item values measured twice on the same items: the mean change and its interval."""
    before, after = [float(x) for x in before], [float(x) for x in after]
    if len(before) != len(after) or not before:
        raise ValueError(f"{name}: paired values need the same items before and after ({len(before)} vs {len(after)}).")
    diffs = [a - b for a, b in zip(after, before)]
    n = len(diffs)
    return {"name": name, "before": sum(before) / n, "after": sum(after) / n, "delta": sum(diffs) / n,
            "ci": bootstrap_ci(diffs), "n": n, "test": TEST.replace("problems", unit), "expect": expect}


def versus_null(name: str, values, null: float, expect: str = "up", unit: str = "problems") -> dict:
    """A headline for a quantity against its null (e.g. pairwise accuracy against the 0.5 of a coin): `before` is
    the null, `after` the mean of the per-item values, `delta` their difference with a bootstrap interval."""
    return paired(name, [null] * len(list(values)), values, expect, unit)


def verdict(h: dict) -> str:
    """'up', 'down' or 'no measurable change' (the interval includes zero). `h` needs only its "ci"."""
    low, high = h["ci"]
    return "up" if low > 0 else "down" if high < 0 else "no measurable change"


def as_taught(h: dict) -> bool:
    """Does the interval exclude zero in the direction the lab teaches?"""
    return verdict(h) == h["expect"]


def sentence(h: dict) -> str:
    low, high = h["ci"]
    v = verdict(h)
    said = ("rose" if v == "up" else "fell" if v == "down" else "no measurable change:")
    tail = "" if v != "no measurable change" else " the interval includes zero, so this run cannot tell"
    check = "" if v == "no measurable change" else (" (the direction this lab teaches)" if as_taught(h)
                                                     else " (against the direction this lab teaches)")
    return (f"**{h['name']}**: {h['before']:.3f} -> {h['after']:.3f}, {said} {h['delta']:+.3f} "
            f"[95% interval {low:+.3f}, {high:+.3f}; n = {h['n']}]{tail}{check}.")


class Closing(str):
    """Text that a notebook shows as Markdown (the last expression of a cell) and a terminal prints as it is."""

    def _repr_markdown_(self):
        return str(self)


def conclude(headlines: list[dict], notes=(), also=()) -> Closing:
    """The closing section of a lab, from its numbers: one line per headline, one per further paired measurement
    in `also` (same form), then the lab's own notes (sentences its code wrote from the same run). The last
    expression of a cell, it shows as Markdown."""
    lines = (["### What this run shows", ""] + [f"- {sentence(h)}" for h in headlines]
             + [f"- {sentence(h)}" for h in also if h] + [f"- {n}" for n in notes if n])
    return Closing("\n".join(lines))


def check(headlines: list[dict]) -> list[dict]:
    """Raise if a headline lacks a field or is inconsistent: the schema every lab's metrics.json follows."""
    for h in headlines:
        missing = {"name", "before", "after", "delta", "ci", "n", "test", "expect"} - set(h)
        if missing:
            raise ValueError(f"headline {h.get('name')!r} lacks {sorted(missing)}")
        if h["expect"] not in ("up", "down") or not h["ci"][0] <= h["ci"][1] or h["n"] < 1:
            raise ValueError(f"headline {h['name']!r} is inconsistent: {h}")
    return headlines
