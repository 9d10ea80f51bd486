"""Any sweep without a question of its own: every run's test accuracy, side by side."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import Finding, bars, group_mean, key, panels, pct, register_question
from cnnlab.reports.runs import Run, by_setting


@register_question("overview")
def overview(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys, drop=())
    acc = {name: group_mean(g, key("test/acc")) for name, g in groups.items()}
    fig, (ax,) = panels(1, width=max(5.0, 0.6 * len(acc)))
    bars(ax, list(acc), list(acc.values()), "test accuracy (%)")
    best = max(acc, key=lambda n: acc[n] or 0) if acc else None
    sentence = (f"Best test accuracy: {best} with {pct(acc[best])}, of {len(runs)} run(s)." if best
                else "No run finished.")
    return Finding(sentence, fig, "Test accuracy of each run.")
