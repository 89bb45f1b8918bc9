"""compare.run trains every arm from the same start and measures each the same way; compare.budget_table names
every budget line on which the arms differ besides the setting under study."""
import pytest
import torch

from postlab import compare


def test_every_arm_starts_from_the_same_weights_and_is_measured_once():
    def start():
        torch.manual_seed(0)
        return torch.nn.Linear(3, 1)

    seen = {}

    def arm(lr):
        def train_arm(model):
            seen[lr] = model.weight.detach().clone()  # the weights this arm starts from
            with torch.no_grad():
                model.weight -= lr
            return {"model": model, "budget": {"updates": 1, "lr": lr}, "note": f"lr {lr}"}
        return train_arm

    measured = []

    def measure(model, name):
        measured.append(name)
        return {"w": model.weight.sum().item()}

    out = compare.run({"small": arm(0.1), "big": arm(1.0)}, start, measure)
    assert measured == ["small", "big"] and set(out) == {"small", "big"}
    assert torch.equal(seen[0.1], seen[1.0])  # the second arm did not start from the first arm's result
    assert out["small"]["w"] - out["big"]["w"] == pytest.approx(3 * 0.9, abs=1e-5)
    assert out["big"]["note"] == "lr 1.0" and out["big"]["budget"] == {"updates": 1, "lr": 1.0}
    assert all(r["seconds"] >= 0 and "model" not in r for r in out.values())


def test_the_budget_table_names_every_difference_but_the_varied_setting():
    runs = {"ppo": {"budget": {"optimizer updates": 16, "answers per prompt": 1, "beta": 0.05}},
            "rloo": {"budget": {"optimizer updates": 16, "answers per prompt": 2, "beta": 0.05}}}
    table, note = compare.budget_table(runs, varied=("beta",))
    assert list(table.columns) == ["ppo", "rloo"] and table.loc["answers per prompt", "rloo"] == 2
    assert note.startswith("The arms' budgets differ in: answers per prompt") and "optimizer updates" not in note
    runs["rloo"]["budget"]["answers per prompt"] = 1
    runs["rloo"]["budget"]["beta"] = 0.0  # the setting under study may differ without a warning
    assert compare.budget_table(runs, varied=("beta",))[1] == "Every arm had the same budget: optimizer updates, answers per prompt."
    assert compare.budget_table(runs)[1] == "The arms' budgets differ in: beta (read the table with that in mind)."
