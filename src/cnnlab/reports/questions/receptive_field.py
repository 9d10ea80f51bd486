"""How do receptive fields grow? Theoretical and effective RF of the last block against depth."""

from __future__ import annotations

import re
from collections.abc import Sequence

from cnnlab.reports.questions.base import Column, Finding, group_mean, panels, register_question
from cnnlab.reports.runs import Run


def last_block(run: Run, kind: str) -> float | None:
    blocks = {int(m.group(1)): v for s, v in run.matching(f"receptive_field/{kind}/").items()
              if (m := re.fullmatch(r"block(\d+)", s))}
    return blocks[max(blocks)] if blocks else None


@register_question("receptive_field")
def receptive_field(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    curves: dict[str, dict[int, list[Run]]] = {}
    for run in (r for r in runs if r.ok):
        model = run.config.get("model", {})
        name = f"k={model.get('kernel_size')} pooling={run.config.get('pooling', {}).get('name')}"
        curves.setdefault(name, {}).setdefault(int(model.get("depth")), []).append(run)
    fig, (left, right) = panels(2)
    said = []
    for name, by_depth in sorted(curves.items()):
        depths = sorted(by_depth)
        theory = [group_mean(by_depth[d], lambda r: last_block(r, "theoretical")) for d in depths]
        sigma = [group_mean(by_depth[d], lambda r: last_block(r, "erf_sigma")) for d in depths]
        left.plot(depths, theory, marker="o", label=name)
        right.plot(depths, sigma, marker="o", label=name)
        said.append(f"{name}: {', '.join(f'{t:.0f}' for t in theory)} px (ERF σ {sigma[0]:.1f} → {sigma[-1]:.1f})")
    left.set(xlabel="depth (conv blocks)", ylabel="theoretical RF of the last block (px)")
    right.set(xlabel="depth (conv blocks)", ylabel="effective RF σ of the last block (px)")
    for ax in (left, right):
        ax.set_xticks(sorted({d for by_depth in curves.values() for d in by_depth}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    sentence = f"Theoretical receptive field of the last block at depth 1, 2, …: {'; '.join(said)}."
    caption = ("Left: 1 + Σ(k−1)·Π strides, read off the traced network. Right: σ of a Gaussian fitted to the "
               "effective receptive field (Luo et al. 2016), mean over seeds.")
    return Finding(sentence, fig, caption, {
        "theoretical RF (px)": Column(lambda r: last_block(r, "theoretical"), "count"),
        "ERF σ (px)": Column(lambda r: last_block(r, "erf_sigma"), "plain"),
    })
