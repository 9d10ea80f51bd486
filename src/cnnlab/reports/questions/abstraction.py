"""Do features get more abstract layer by layer? A linear probe and linear CKA per stage, and whether CKA matches
each stage of one seed's network to the same stage of another seed's (Kornblith et al. 2019, their Table 2)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

from cnnlab.reports.questions.base import (
    Column,
    Finding,
    Paper,
    band,
    key,
    label_points,
    panels,
    register_question,
    reproduce,
    spread,
    stage_curve,
)
from cnnlab.reports.runs import Run, by_setting
from cnnlab.reports.stats import Interval, interval, seeds_note

KORNBLITH_CORRESPONDENCE = 0.993  # linear CKA, their Table 2


def stages(run: Run) -> dict[str, float]:
    return {s: v.mean for s, v in stage_curve([run], "linear_probe/", skip=("input", "network")).items() if v}


def correspondence(group: Sequence[Run]) -> Interval | None:
    """Layer-correspondence accuracy of linear CKA over every pair of the group's seeds (runs that saved their
    Gram matrices: callbacks.cka.save_grams=true)."""
    from cnnlab.probes.cka import GRAMS_FILE, load_grams
    from cnnlab.probes.cka import correspondence as match

    grams = [load_grams(run.dir / "probes" / GRAMS_FILE) for run in group
             if (run.dir / "probes" / GRAMS_FILE).exists()]
    return interval(match(a, b) for a, b in combinations(grams, 2))


@register_question("abstraction")
def abstraction(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    fig, (left, right) = panels(2)
    rises, pixels, matched, names = [], [], {}, []
    for name, group in groups.items():
        probe = stage_curve(group, "linear_probe/", skip=("input", "network"))
        xs = list(range(1, len(probe) + 1))
        band(left, xs, list(probe.values()), name)
        names += [(stage, (x, 100 * probe[stage].mean)) for x, stage in zip(xs, probe) if probe[stage] is not None]
        cka = stage_curve(group, "cka/linear/")
        first = next(iter(probe), None)
        similarity = [Interval(1.0, 0.0, len(group))] + [cka.get(f"{first}~{s}") for s in list(probe)[1:]]
        band(right, xs, similarity, name, scale=1.0)
        values = [v for v in probe.values() if v is not None]
        if values:
            rises.append(f"{name} {values[0].text()} → {values[-1].text()}")
        pixels += [key("linear_probe/input")(run) for run in group]
        matched[name] = correspondence(group)
    label_points(left, names, fontsize=6, alpha=0.7)
    left.set(xlabel="stage (input → output)", ylabel="linear-probe accuracy (%)")
    right.set(xlabel="stage (input → output)", ylabel="linear CKA with the first stage")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    pixel = interval(pixels)
    sentence = (f"Linear-probe accuracy from the first stage to the last: {'; '.join(rises)} (raw pixels: "
                f"{pixel.text() if pixel else '–'}; {seeds_note(spread(g, key('test/acc')) for g in groups.values())}"
                f", 95 % intervals).")
    found = {n: m for n, m in matched.items() if m is not None}
    if found:
        sentence += (" Linear CKA matches each stage to the same stage of a network trained from another seed "
                     + ", ".join(f"{m.text()} of the time for {n}" for n, m in found.items())
                     + f" (Kornblith et al. 2019: {100 * KORNBLITH_CORRESPONDENCE:.1f} %).")
    papers = [Paper("Kornblith et al. 2019, Table 2", f"linear CKA finds the same stage in a network trained from "
                    f"another seed (their deep plain CNNs on CIFAR-10; cnnlab's {name})",
                    f"{100 * KORNBLITH_CORRESPONDENCE:.1f} %", m.text(), reproduce("abstraction", runs))
              for name, m in found.items()]
    caption = ("Left: a logistic regression on each stage's frozen, pooled features. Right: how similar each "
               "stage's representation is to the first stage's (linear CKA). Mean over seeds, band: 95 % interval.")
    return Finding(sentence, fig, caption, {
        "probe: first stage": Column(lambda r: next(iter(stages(r).values()), None)),
        "probe: last stage": Column(lambda r: next(reversed(stages(r).values()), None)),
        "probe: pixels": Column(key("linear_probe/input")),
    }, papers)
