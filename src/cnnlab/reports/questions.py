"""One entry per question in experiments/: the plot that answers it, a one-line answer computed from the
runs' numbers, and the numbers the side-by-side table shows. Seeds of one setting are averaged.

A run names its question in its config (`question: pooling`); runs without one get `overview`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from matplotlib.figure import Figure

from cnnlab.pictures.render import figure
from cnnlab.registry import Registry
from cnnlab.reports.runs import Run, by_setting, mean

Getter = Callable[[Run], float | None]


@dataclass
class Column:
    """One number per run in the table, and how to write it: '%' (a fraction), 'count', 's' or 'plain'."""

    get: Getter
    kind: str = "%"

    def cell(self, run: Run) -> str:
        value = self.get(run)
        if value is None:
            return "–"
        if self.kind == "%":
            return pct(value)
        if self.kind in ("count", "s"):
            return f"{value:,.0f}"
        return f"{value:.3g}" if abs(value) < 1e-2 or abs(value) >= 1e3 else f"{value:.2f}"


@dataclass
class Finding:
    sentence: str                     # the answer, in one line, from the numbers
    figure: Figure                    # the key plot
    caption: str
    columns: dict[str, Column] = field(default_factory=dict)  # header → number, for the table


QUESTIONS: Registry[Callable[[Sequence[Run], Sequence[str]], Finding]] = Registry("question", config_key="question")


def pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def key(name: str) -> Getter:
    return lambda run: run.number(name)


def group_mean(runs: Sequence[Run], get: Getter) -> float | None:
    return mean([get(run) for run in runs])


def params(run: Run) -> float | None:
    return run.number("params") or run.number("weight_sharing/params")


def panels(count: int, width: float = 5.0, height: float = 3.4) -> tuple[Figure, list]:
    fig = figure()
    fig.set_size_inches(width * count, height)
    axes = fig.subplots(1, count)
    return fig, list(axes) if count > 1 else [axes]


def short(name: str) -> str:
    """'model=stn transforms=rotate180' → 'stn, rotate180': tick labels that fit under a bar."""
    return ", ".join(part.split("=", 1)[-1] for part in name.split(" "))


def bars(ax, labels: Sequence[str], values: Sequence[float | None], ylabel: str) -> None:
    ax.bar(range(len(labels)), [100 * (v or 0) for v in values], color="tab:blue")
    ax.set_xticks(range(len(labels)), [short(n) for n in labels], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")


def stage_curve(runs: Sequence[Run], prefix: str, skip: Sequence[str] = ()) -> dict[str, float]:
    """Stage → mean over the runs of the probe numbers under `prefix`, in the first run's stage order."""
    stages = [s for s in runs[0].matching(prefix) if s not in skip]
    return {s: mean([run.matching(prefix).get(s) for run in runs]) for s in stages}


@QUESTIONS.register("overview")
def overview(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys, drop=())
    acc = {name: group_mean(g, key("test/acc")) for name, g in groups.items()}
    fig, (ax,) = panels(1, width=max(5.0, 0.6 * len(acc)))
    bars(ax, list(acc), list(acc.values()), "test accuracy (%)")
    best = max(acc, key=lambda n: acc[n] or 0) if acc else None
    sentence = (f"Best test accuracy: {best} with {pct(acc[best])}, of {len(runs)} run(s)." if best
                else "No run finished.")
    return Finding(sentence, fig, "Test accuracy of each run.")


def stages(run: Run) -> dict[str, float]:
    return stage_curve([run], "linear_probe/", skip=("input", "network"))


@QUESTIONS.register("abstraction")
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


def shift_curve(runs: Sequence[Run], kind: str) -> dict[int, float]:
    numbers = stage_curve(runs, f"translation/{kind}/shift")
    return {int(s): v for s, v in numbers.items()}


@QUESTIONS.register("pooling")
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


@QUESTIONS.register("nonlinearity")
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


def last_block(run: Run, kind: str) -> float | None:
    blocks = {int(m.group(1)): v for s, v in run.matching(f"receptive_field/{kind}/").items()
              if (m := re.fullmatch(r"block(\d+)", s))}
    return blocks[max(blocks)] if blocks else None


@QUESTIONS.register("receptive_field")
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


@QUESTIONS.register("weight_sharing")
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
    return Finding(sentence, fig, caption, {"params": Column(params, "count"),
                                             "val acc. per M params": Column(key("weight_sharing/acc_per_mparam"), "plain")})


def angle_curve(runs: Sequence[Run]) -> dict[int, float]:
    return {int(a.removesuffix("deg")): v for a, v in stage_curve(runs, "rotation/acc/").items()}


@QUESTIONS.register("rotation")
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


@QUESTIONS.register("architectures")
def architectures(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    by_data: dict[str, list[Run]] = {}
    for run in (r for r in runs if r.ok):
        by_data.setdefault(run.dataset, []).append(run)
    fig, axes = panels(len(by_data) or 1, width=5.5, height=4.0)
    said = []
    for ax, (data, data_runs) in zip(axes, sorted(by_data.items())):
        for run in data_runs:
            ax.scatter(params(run), 100 * run.number("test/acc"), color="tab:blue")
            ax.annotate(run.config["model"]["name"], (params(run), 100 * run.number("test/acc")), fontsize=7)
        ax.set_xscale("log")
        ax.set(title=data, xlabel="parameters", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        best = max(data_runs, key=lambda r: r.number("test/acc"))
        said.append(f"on {data} {best.config['model']['name']} leads with {pct(best.number('test/acc'))} "
                    f"({params(best) / 1e6:.2f} M parameters, {best.number('wall_time_s'):.0f} s)")
    unfinished = sorted({r.dataset for r in runs if not r.ok} - set(by_data))
    if unfinished:
        said.append(f"no {' or '.join(unfinished)} run finished (see the failed runs)")
    sentence = f"On the same short budget, {'; '.join(said) or 'no run finished'}."
    caption = "Test accuracy against parameter count (log), one point per model, per dataset."
    return Finding(sentence, fig, caption, {"params": Column(params, "count")})
