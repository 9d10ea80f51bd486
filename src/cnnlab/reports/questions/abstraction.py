"""Do features get more abstract layer by layer? A linear probe and linear CKA per stage."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import Column, Finding, group_mean, key, panels, pct, register_question, stage_curve
from cnnlab.reports.runs import Run, by_setting, mean


def stages(run: Run) -> dict[str, float]:
    return stage_curve([run], "linear_probe/", skip=("input", "network"))


@register_question("abstraction")
def abstraction(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    fig, (left, right) = panels(2)
    rises, pixels = [], []
    for name, group in groups.items():
        probe = stage_curve(group, "linear_probe/", skip=("input", "network"))
        xs = range(1, len(probe) + 1)
        left.plot(xs, [100 * v for v in probe.values()], marker="o", label=name)
        for x, stage in zip(xs, probe):
            left.annotate(stage, (x, 100 * probe[stage]), fontsize=6, alpha=0.7)
        cka = stage_curve(group, "cka/linear/")
        first = next(iter(probe), None)
        similarity = [1.0] + [cka.get(f"{first}~{s}") for s in list(probe)[1:]]
        right.plot(xs, similarity, marker="o", label=name)
        values = list(probe.values())
        if values:
            rises.append(f"{name} {pct(values[0])} → {pct(values[-1])}")
        pixels.append(group_mean(group, key("linear_probe/input")))
    left.set(xlabel="stage (input → output)", ylabel="linear-probe accuracy (%)")
    right.set(xlabel="stage (input → output)", ylabel="linear CKA with the first stage")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    sentence = (f"Linear-probe accuracy from the first stage to the last: {'; '.join(rises)} "
                f"(raw pixels: {pct(mean(pixels))}).")
    caption = ("Left: a logistic regression on each stage's frozen, pooled features. Right: how similar each "
               "stage's representation is to the first stage's (linear CKA). Means over seeds.")
    return Finding(sentence, fig, caption, {
        "probe: first stage": Column(lambda r: next(iter(stages(r).values()), None)),
        "probe: last stage": Column(lambda r: next(reversed(stages(r).values()), None)),
        "probe: pixels": Column(key("linear_probe/input")),
    })
