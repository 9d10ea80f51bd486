"""Why does the non-linearity matter? Accuracy per activation and the gap to one affine map."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import Column, Finding, bars, key, panels, register_question, spread
from cnnlab.reports.runs import Run, by_setting
from cnnlab.reports.stats import compare, interval, seeds_note, versus


@register_question("nonlinearity")
def nonlinearity(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    fig, (left, right) = panels(2)
    acc = {n: spread(g, key("test/acc")) for n, g in groups.items()}
    gap = {n: spread(g, key("linearity/relative_diff")) for n, g in groups.items()}
    bars(left, list(acc), list(acc.values()), "test accuracy (%)")
    bars(right, list(gap), list(gap.values()), "gap to one affine map (relative)", scale=1.0, color="tab:orange",
         bounds=None)
    right.set_yscale("log")
    linear = min(gap, key=lambda n: gap[n].mean if gap[n] is not None else float("inf"))
    pixels = interval(key("linearity/linear_classifier_acc")(run) for g in groups.values() for run in g)
    if pixels is not None:
        left.axhline(100 * pixels.mean, color="black", linestyle="--", label="logistic regression on the pixels")
        left.legend(fontsize=8, loc="lower left")
    nonlinear = {n: v for n, v in acc.items() if n != linear}
    sentence = (f"With {linear} the network is one affine map (relative gap {gap[linear].mean:.1e}); "
                f"{versus(linear, acc[linear], 'a logistic regression on the pixels', pixels)}. Among the "
                f"non-linear settings, {compare(nonlinear, 'test accuracy')}; the closest of them to an affine map "
                f"is still {min(g.mean for n, g in gap.items() if n != linear and g):.2g}× its own output scale away "
                f"({seeds_note(acc.values())}, 95 % intervals)." if nonlinear else
                f"With {linear} the network is one affine map; "
                f"{versus(linear, acc[linear], 'a logistic regression on the pixels', pixels)}.")
    caption = ("Left: test accuracy per activation. Right: the largest difference between the network and the "
               "affine map that agrees with it at 0 and every unit image, relative to its largest output (log). "
               "Error bars: 95 % interval over seeds.")
    return Finding(sentence, fig, caption, {
        "gap to affine": Column(key("linearity/relative_diff"), "plain"),
        "folded map acc.": Column(key("linearity/folded_acc")),
        "pixel classifier acc.": Column(key("linearity/linear_classifier_acc")),
    })
