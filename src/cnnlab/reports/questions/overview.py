"""Any sweep without a question of its own: test accuracy per setting, mean ± 95 % interval over its seeds."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import Finding, bars, key, panels, register_question, spread
from cnnlab.reports.runs import Run, by_setting
from cnnlab.reports.stats import compare, seeds_note


@register_question("overview")
def overview(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    acc = {name: spread(g, key("test/acc")) for name, g in groups.items()}
    fig, (ax,) = panels(1, width=max(5.0, 0.6 * len(acc)))
    bars(ax, list(acc), list(acc.values()), "test accuracy (%)")
    if not acc:
        return Finding("No run finished.", fig, "Test accuracy of each setting.")
    if len(acc) == 1:
        (name, value), = acc.items()
        sentence = f"Test accuracy: {value.text()} ({seeds_note(acc.values())})."
    else:
        sentence = f"{compare(acc, 'test accuracy')} ({seeds_note(acc.values())}, 95 % intervals)."
    return Finding(sentence, fig, "Test accuracy of each setting: mean over its seeds, error bars the 95 % "
                   "interval (Student t; none for a single seed).")
