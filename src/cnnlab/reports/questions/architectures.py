"""How do the classic architectures compare? Accuracy against parameters, per dataset."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import (
    Column,
    Finding,
    error_extent,
    key,
    label_points,
    panels,
    params,
    register_question,
    spread,
)
from cnnlab.reports.runs import Run
from cnnlab.reports.stats import compare, seeds_note


@register_question("architectures")
def architectures(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    by_data: dict[str, dict[str, list[Run]]] = {}
    for run in (r for r in runs if r.ok):
        by_data.setdefault(run.dataset, {}).setdefault(run.config["model"]["name"], []).append(run)
    fig, axes = panels(len(by_data) or 1, width=5.5, height=4.0)
    said = []
    for ax, (data, models) in zip(axes, sorted(by_data.items())):
        acc = {name: spread(group, key("test/acc")) for name, group in models.items()}
        size = {name: spread(group, params) for name, group in models.items()}
        for name in models:
            ax.errorbar(size[name].mean, 100 * acc[name].mean, yerr=error_extent([acc[name]], 100.0), fmt="o",
                        color="tab:blue", capsize=3)
        ax.set_xscale("log")
        low, high = ax.get_ylim()
        ax.set_ylim(max(low, 0.0), min(high, 100.0))
        label_points(ax, [(name, (size[name].mean, 100 * acc[name].mean)) for name in models])
        ax.set(title=data, xlabel="parameters", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        said.append(f"on {data}, {compare(acc, 'test accuracy')} ({seeds_note(acc.values())})")
    unfinished = sorted({r.dataset for r in runs if not r.ok} - set(by_data))
    if unfinished:
        said.append(f"no {' or '.join(unfinished)} run finished (see the failed runs)")
    sentence = f"On the same short budget, {'; '.join(said) or 'no run finished'} (95 % intervals)."
    caption = ("Test accuracy against parameter count (log), one point per model, per dataset; error bars: 95 % "
               "interval over seeds, cut at 0 and 100 %.")
    return Finding(sentence, fig, caption, {"params": Column(params, "count")})
