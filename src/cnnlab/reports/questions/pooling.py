"""What does pooling buy? Translation consistency and accuracy on shifted images per pooling."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import (
    Column,
    Finding,
    Paper,
    band,
    key,
    panels,
    register_question,
    reproduce,
    spread,
    stage_curve,
)
from cnnlab.reports.runs import Run, by_setting
from cnnlab.reports.stats import compare, seeds_note, versus

#: Zhang 2019 (ICML), the consistency table of adobe/antialiased-cnns: ImageNet, max pooling → anti-aliased.
ZHANG = "VGG16 88.52 → 89.92 %, ResNet-50 89.20 → 91.29 % (ImageNet)"


def shift_curve(runs: Sequence[Run], kind: str) -> dict[int, object]:
    return {int(s): v for s, v in stage_curve(runs, f"translation/{kind}/shift").items()}


@register_question("pooling")
def pooling(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    fig, (left, right) = panels(2)
    consistency, shifted, acc = {}, {}, {}
    shift = 0
    for name, group in groups.items():
        curves = {kind: shift_curve(group, kind) for kind in ("consistency", "acc")}
        for ax, curve in ((left, curves["consistency"]), (right, curves["acc"])):
            band(ax, list(curve), list(curve.values()), name)
        shift = max(curves["consistency"], default=shift)
        consistency[name] = curves["consistency"].get(shift)
        shifted[name] = curves["acc"].get(shift)
        acc[name] = spread(group, key("test/acc"))
    for ax, ylabel in ((left, "consistency (%)"), (right, "accuracy on shifted images (%)")):
        ax.set(xlabel="largest shift (pixels)", ylabel=ylabel, xticks=range(shift + 1))
        ax.grid(alpha=0.3)
    left.legend(fontsize=8)
    sentence = (f"Under random shifts of up to ±{shift} px, {compare(consistency, 'consistency')}. On shifted "
                f"images, {compare(shifted, 'accuracy')}. On the unshifted test set, {compare(acc, 'accuracy')} "
                f"({seeds_note(acc.values())}, 95 % intervals).")
    by_pooling = {name.split("pooling=")[-1].split(" ")[0]: value for name, value in consistency.items()}
    papers = [Paper("Zhang 2019, anti-aliased CNNs", "shift consistency, max pooling → anti-aliased (blur) pooling",
                    ZHANG, versus("blur", by_pooling.get("blur"), "max", by_pooling.get("max")) + f" (±{shift} px)",
                    reproduce("pooling", runs))] if {"blur", "max"} <= set(by_pooling) else []
    caption = ("Left: how often two random circular shifts of one image get the same label (Zhang 2019). Right: "
               "accuracy on the shifted images. Both against the largest shift in each direction; mean over seeds, "
               "band: 95 % interval.")
    return Finding(sentence, fig, caption, {
        "consistency ±2 px": Column(key("translation/consistency/shift2")),
        f"consistency ±{shift} px": Column(key(f"translation/consistency/shift{shift}")),
        f"accuracy ±{shift} px": Column(key(f"translation/acc/shift{shift}")),
    }, papers)
