"""Why does the non-linearity matter? Accuracy per activation and the gap to one affine map."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import Column, Finding, bars, group_mean, key, panels, pct, register_question, short
from cnnlab.reports.runs import Run, by_setting, mean


@register_question("nonlinearity")
def nonlinearity(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    fig, (left, right) = panels(2)
    acc = {n: group_mean(g, key("test/acc")) for n, g in groups.items()}
    gap = {n: group_mean(g, key("linearity/relative_diff")) for n, g in groups.items()}
    bars(left, list(acc), list(acc.values()), "test accuracy (%)")
    right.bar(range(len(gap)), [g or 0 for g in gap.values()], color="tab:orange")
    right.set_yscale("log")
    right.set_xticks(range(len(gap)), [short(n) for n in gap], rotation=30, ha="right", fontsize=8)
    right.set_ylabel("gap to one affine map (relative)")
    right.grid(alpha=0.3, axis="y")
    linear = min(gap, key=lambda n: gap[n] if gap[n] is not None else float("inf"))
    others = [n for n in acc if n != linear]
    best = max(others, key=lambda n: acc[n] or 0) if others else linear
    pixels = mean([group_mean(g, key("linearity/linear_classifier_acc")) for g in groups.values()])
    if pixels is not None:
        left.axhline(100 * pixels, color="black", linestyle="--", label="logistic regression on the pixels")
        left.legend(fontsize=8, loc="lower left")
    sentence = (f"With {linear} the network is one affine map (relative gap {gap[linear]:.1e}) and reaches "
                f"{pct(acc[linear])}, against {pct(pixels)} for a logistic regression on the pixels; "
                f"the best non-linear setting, {best}, reaches {pct(acc[best])} and is {gap[best]:.2g}× its own "
                f"output scale away from any affine map.")
    caption = ("Left: test accuracy per activation. Right: the largest difference between the network and the "
               "affine map that agrees with it at 0 and every unit image, relative to its largest output (log).")
    return Finding(sentence, fig, caption, {
        "gap to affine": Column(key("linearity/relative_diff"), "plain"),
        "folded map acc.": Column(key("linearity/folded_acc")),
        "pixel classifier acc.": Column(key("linearity/linear_classifier_acc")),
    })
