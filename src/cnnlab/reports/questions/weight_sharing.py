"""Do locality and weight sharing beat an MLP? Accuracy against the share of training images."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import Column, Finding, group_mean, key, panels, params, pct, register_question
from cnnlab.reports.runs import Run


@register_question("weight_sharing")
def weight_sharing(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    curves: dict[str, dict[float, list[Run]]] = {}
    for run in (r for r in runs if r.ok):
        fraction = float(run.config.get("data", {}).get("train_fraction", 1.0))
        curves.setdefault(run.config["model"]["name"], {}).setdefault(fraction, []).append(run)
    fig, (ax,) = panels(1, width=5.5)
    at: dict[float, dict[str, float | None]] = {}
    for name, by_fraction in curves.items():
        fractions = sorted(by_fraction)
        acc = [group_mean(by_fraction[f], key("test/acc")) for f in fractions]
        size = group_mean(next(iter(by_fraction.values())), params)
        ax.plot([100 * f for f in fractions], [100 * a for a in acc], marker="o",
                label=f"{name} ({size / 1e3:.0f} k params)" if size else name)
        for f, a in zip(fractions, acc):
            at.setdefault(f, {})[name] = a
    ax.set_xscale("log")
    ax.set(xlabel="training images used (%)", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    parts = [f"{100 * f:g} % of the images: " + ", ".join(f"{n} {pct(a)}" for n, a in sorted(
        at[f].items(), key=lambda item: -(item[1] or 0))) for f in sorted(at)]
    sentence = f"At matched parameters, test accuracy with {'; '.join(parts)}."
    caption = "Test accuracy against the share of the 55,000 training images, same steps for each; mean over seeds."
    return Finding(sentence, fig, caption, {
        "params": Column(params, "count"),
        "val acc. per M params": Column(key("weight_sharing/acc_per_mparam"), "plain"),
    })
