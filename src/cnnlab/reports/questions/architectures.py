"""How do the classic architectures compare? Accuracy against parameters, per dataset."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import Column, Finding, panels, params, pct, register_question
from cnnlab.reports.runs import Run


@register_question("architectures")
def architectures(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    by_data: dict[str, list[Run]] = {}
    for run in (r for r in runs if r.ok):
        by_data.setdefault(run.dataset, []).append(run)
    fig, axes = panels(len(by_data) or 1, width=5.5, height=4.0)
    said = []
    for ax, (data, data_runs) in zip(axes, sorted(by_data.items())):
        for run in data_runs:
            ax.scatter(params(run), 100 * run.number("test/acc"), color="tab:blue")
            ax.annotate(run.config["model"]["name"], (params(run), 100 * run.number("test/acc")), fontsize=7)
        ax.set_xscale("log")
        ax.set(title=data, xlabel="parameters", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        best = max(data_runs, key=lambda r: r.number("test/acc"))
        said.append(f"on {data} {best.config['model']['name']} leads with {pct(best.number('test/acc'))} "
                    f"({params(best) / 1e6:.2f} M parameters, {best.number('wall_time_s'):.0f} s)")
    unfinished = sorted({r.dataset for r in runs if not r.ok} - set(by_data))
    if unfinished:
        said.append(f"no {' or '.join(unfinished)} run finished (see the failed runs)")
    sentence = f"On the same short budget, {'; '.join(said) or 'no run finished'}."
    caption = "Test accuracy against parameter count (log), one point per model, per dataset."
    return Finding(sentence, fig, caption, {"params": Column(params, "count")})
