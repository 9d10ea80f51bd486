"""How do receptive fields grow? Theoretical and effective RF of the last block against depth, and the exponent
of the effective RF's growth, σ ∝ depth^b, at initialisation and after training (Luo et al. 2016: b = 0.5)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from cnnlab.reports.questions.base import Column, Finding, Paper, band, panels, register_question, reproduce, spread
from cnnlab.reports.runs import Run
from cnnlab.reports.stats import Interval, interval, seeds_note

LUO_EXPONENT = 0.5


def last_block(run: Run, kind: str) -> float | None:
    blocks = {int(m.group(1)): v for s, v in run.matching(f"receptive_field/{kind}/").items()
              if (m := re.fullmatch(r"block(\d+)", s))}
    return blocks[max(blocks)] if blocks else None


def exponent(runs: Sequence[Run], kind: str) -> float | None:
    """b in σ ∝ depth^b: the slope of log σ against log depth over one seed's runs (one per depth)."""
    points = [(int(r.config["model"]["depth"]), last_block(r, kind)) for r in runs]
    points = [(d, s) for d, s in points if s is not None and s > 0]
    if len({d for d, _ in points}) < 2:
        return None
    xs, ys = zip(*((math.log(d), math.log(s)) for d, s in points))
    return float(np.polyfit(xs, ys, 1)[0])


def exponents(by_depth: dict[int, list[Run]], kind: str) -> Interval | None:
    """The exponent fitted per seed, then its mean and 95 % interval over seeds."""
    by_seed: dict[object, list[Run]] = {}
    for group in by_depth.values():
        for run in group:
            by_seed.setdefault(run.config.get("seed"), []).append(run)
    return interval(exponent(seed_runs, kind) for seed_runs in by_seed.values())


@register_question("receptive_field")
def receptive_field(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    curves: dict[str, dict[int, list[Run]]] = {}
    for run in (r for r in runs if r.ok):
        model = run.config.get("model", {})
        name = f"k={model.get('kernel_size')} pooling={run.config.get('pooling', {}).get('name')}"
        curves.setdefault(name, {}).setdefault(int(model.get("depth")), []).append(run)
    fig, (left, middle, right) = panels(3)
    said, counts, papers = [], [], []
    for name, by_depth in sorted(curves.items()):
        depths = sorted(by_depth)
        theory = [spread(by_depth[d], lambda r: last_block(r, "theoretical")) for d in depths]
        sigma = [spread(by_depth[d], lambda r: last_block(r, "erf_sigma")) for d in depths]
        counts += sigma
        band(left, depths, theory, name, scale=1.0, bounds=None)
        band(middle, depths, sigma, name, scale=1.0, bounds=None)
        trained, init = exponents(by_depth, "erf_sigma"), exponents(by_depth, "init/erf_sigma")
        fits = [f"trained b = {trained.text('plain')}" if trained else None,
                f"at init b = {init.text('plain')}" if init else None]
        ratio = (sigma[-1].mean / theory[-1].mean) if sigma[-1] and theory[-1] and theory[-1].mean else None
        said.append(f"{name}: {', '.join(f for f in fits if f) or 'no fit'}"
                    + (f"; σ is {100 * ratio:.0f} % of the theoretical RF at depth {depths[-1]}" if ratio else ""))
        papers.append(Paper("Luo et al. 2016", f"exponent b of the effective RF's growth, σ ∝ depth^b ({name})",
                            "0.5 (√depth)", " and ".join(f for f in fits if f) or "no fit",
                            reproduce("receptive_field", runs)))
        for row, value in ((0, trained), (1, init)):
            if value is not None:
                right.errorbar(value.mean, len(said) - 1 + 0.2 * row, xerr=value.half or 0, fmt="os"[row],
                               color=f"C{len(said) - 1}", capsize=3,
                               label=f"{name} ({'trained' if row == 0 else 'init'})")
    right.axvline(LUO_EXPONENT, color="black", linestyle="--", label="Luo et al. 2016: √depth")
    right.set(xlabel="exponent b in σ ∝ depth^b", yticks=[])
    right.legend(fontsize=6)
    left.set(xlabel="depth (conv blocks)", ylabel="theoretical RF of the last block (px)")
    middle.set(xlabel="depth (conv blocks)", ylabel="effective RF σ of the last block (px)")
    for ax in (left, middle):
        ax.set_xticks(sorted({d for by_depth in curves.values() for d in by_depth}))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    sentence = (f"The effective receptive field grows like depth^b — {'; '.join(said)} — against b = 0.5 in Luo "
                f"et al. 2016 ({seeds_note(counts)}, 95 % intervals).")
    caption = ("Left: 1 + Σ(k−1)·Π strides, read off the traced network. Middle: σ of a Gaussian fitted to the "
               "effective receptive field (Luo et al. 2016); mean over seeds, band: 95 % interval. Right: the "
               "exponent b of σ ∝ depth^b, fitted per seed (log-log), trained and at initialisation.")
    return Finding(sentence, fig, caption, {
        "theoretical RF (px)": Column(lambda r: last_block(r, "theoretical"), "count"),
        "ERF σ (px)": Column(lambda r: last_block(r, "erf_sigma"), "plain"),
        "ERF σ at init (px)": Column(lambda r: last_block(r, "init/erf_sigma"), "plain"),
    }, papers)
