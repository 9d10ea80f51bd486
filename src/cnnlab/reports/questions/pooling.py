"""What does pooling buy? Translation consistency and accuracy on shifted images per pooling."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import Column, Finding, group_mean, key, panels, pct, register_question, stage_curve
from cnnlab.reports.runs import Run, by_setting


def shift_curve(runs: Sequence[Run], kind: str) -> dict[int, float]:
    numbers = stage_curve(runs, f"translation/{kind}/shift")
    return {int(s): v for s, v in numbers.items()}


@register_question("pooling")
def pooling(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    fig, (left, right) = panels(2)
    consistency, shifted, acc = {}, {}, {}
    shift = 0
    for name, group in groups.items():
        curves = {kind: shift_curve(group, kind) for kind in ("consistency", "acc")}
        for ax, curve in ((left, curves["consistency"]), (right, curves["acc"])):
            ax.plot(list(curve), [100 * v for v in curve.values()], marker="o", label=name)
        shift = max(curves["consistency"], default=shift)
        consistency[name] = curves["consistency"].get(shift)
        shifted[name] = curves["acc"].get(shift)
        acc[name] = group_mean(group, key("test/acc"))
    for ax, ylabel in ((left, "consistency (%)"), (right, "accuracy on shifted images (%)")):
        ax.set(xlabel="largest shift (pixels)", ylabel=ylabel, xticks=range(shift + 1))
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)

    def most(values: dict[str, float | None], sign: int = 1) -> str:
        return max((n for n in values if values[n] is not None), key=lambda n: sign * values[n])

    sentence = (f"Under random shifts of up to ±{shift} px, {most(consistency)} keeps the most predictions "
                f"({pct(consistency[most(consistency)])} consistent) and {most(consistency, -1)} the fewest "
                f"({pct(consistency[most(consistency, -1)])}); on shifted images {most(shifted)} is the most accurate "
                f"({pct(shifted[most(shifted)])}), on the unshifted test set {most(acc)} ({pct(acc[most(acc)])}, "
                f"{most(acc, -1)} lowest at {pct(acc[most(acc, -1)])}).")
    caption = ("Left: how often two random circular shifts of one image get the same label (Zhang 2019). Right: "
               "accuracy on the shifted images. Both against the largest shift in each direction; means over seeds.")
    return Finding(sentence, fig, caption, {
        "consistency ±2 px": Column(key("translation/consistency/shift2")),
        f"consistency ±{shift} px": Column(key(f"translation/consistency/shift{shift}")),
        f"accuracy ±{shift} px": Column(key(f"translation/acc/shift{shift}")),
    })
