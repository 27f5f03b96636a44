"""The budget-curve figure: one line per curve, the budgets on its axis."""

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from dnorm.figures import budget


def table():
    rows = []
    for curve, base in (("Standardization", 0.80), ("Ours (λ 1.5)", 0.70)):
        for budget_value, epochs in ((1, 4), (2, 8), (4, 16)):
            for seed in (1, 2):
                value = base + 0.02 * budget_value + 0.001 * seed
                rows.append({"setting": "dual", "curve": curve, "method": curve.split()[0], "experiment": f"{curve}{budget_value}",
                             "budget": budget_value, "joint epochs": epochs, "seed": seed, "val mean DSC": value,
                             "val CSF DSC": value - 0.1, "test mean DSC": value + 0.01, "test CSF DSC": value - 0.05})
    return pd.DataFrame(rows)


def test_the_figure_draws_each_curve_at_its_budgets(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(budget, "save_figure", lambda fig, path: drawn.append(fig))
    budget.plot_budget_curve(table(), str(tmp_path / "budget.png"))
    axes = drawn[0].axes
    assert len(axes) == 4
    lines = [container.lines[0] for container in axes[0].containers]  # each errorbar's data line
    assert len(lines) == 2
    ours = next(line for line in lines if line.get_ydata()[0] < 0.75)
    assert list(ours.get_xdata()) == [1, 2, 4]
    assert ours.get_ydata() == pytest.approx([0.7215, 0.7415, 0.7815])
    assert [t.get_text() for t in axes[2].get_xticklabels()] == ["1×\n4 ep.", "2×\n8 ep.", "4×\n16 ep."]
    plt.close(drawn[0])


def test_the_figure_is_written(tmp_path):
    path = tmp_path / "budget.png"
    budget.plot_budget_curve(table(), str(path))
    assert path.stat().st_size > 10_000


def test_an_empty_table_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no experiment is trained at two budgets"):
        budget.plot_budget_curve(table().iloc[:0], str(tmp_path / "budget.png"))
