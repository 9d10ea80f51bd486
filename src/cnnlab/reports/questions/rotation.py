"""Do CNNs handle rotation? Accuracy against angle and first-layer filter rotation-similarity."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import (
    Column,
    Finding,
    group_mean,
    key,
    panels,
    pct,
    register_question,
    short,
    stage_curve,
)
from cnnlab.reports.runs import Run, by_setting


def angle_curve(runs: Sequence[Run]) -> dict[int, float]:
    return {int(a.removesuffix("deg")): v for a, v in stage_curve(runs, "rotation/acc/").items()}


@register_question("rotation")
def rotation(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    fig, (left, right) = panels(2)
    said, similarity, baseline = [], {}, {}
    for name, group in groups.items():
        curve = angle_curve(group)
        left.plot(list(curve), [100 * v for v in curve.values()], marker="o", label=name)
        similarity[name] = group_mean(group, key("rotation/filter_similarity"))
        baseline[name] = group_mean(group, key("rotation/filter_similarity_random"))
        filters = ("" if similarity[name] is None else
                   f", first-layer filter rotation-similarity {similarity[name]:.2f} (random {baseline[name]:.2f})")
        said.append(f"{name}: {pct(curve.get(0))} upright, {pct(curve.get(90))} at 90°, "
                    f"{pct(curve.get(180))} at 180°{filters}")
    left.set(xlabel="rotation (degrees)", ylabel="accuracy (%)")
    left.set_xticks(range(-180, 181, 60))
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    xs = range(len(similarity))
    right.bar([x - 0.2 for x in xs], [s or 0 for s in similarity.values()], width=0.4, color="tab:green",
              label="trained filters")
    right.bar([x + 0.2 for x in xs], [b or 0 for b in baseline.values()], width=0.4, color="tab:gray",
              label="random filters, same shape")
    right.set_xticks(list(xs), [short(n) for n in similarity], rotation=30, ha="right", fontsize=8)
    right.set_ylabel("filter rotation-similarity")
    right.legend(fontsize=8)
    sentence = f"Accuracy on rotated test images — {'; '.join(said)}."
    caption = ("Left: test-image accuracy against rotation angle. Right: each first-layer filter's best "
               "correlation with a 90/180/270°-rotated other filter, mean over filters and seeds, next to random "
               "filters of the same shape.")
    return Finding(sentence, fig, caption, {
        "acc at 90°": Column(key("rotation/acc/+90deg")),
        "acc at 180°": Column(key("rotation/acc/+180deg")),
        "filter similarity": Column(key("rotation/filter_similarity"), "plain"),
        "random filters": Column(key("rotation/filter_similarity_random"), "plain"),
    })
