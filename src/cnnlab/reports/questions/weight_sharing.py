"""Do locality and weight sharing beat an MLP? Accuracy against the share of training images."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import (
    Column,
    Finding,
    Paper,
    band,
    data_option,
    key,
    panels,
    params,
    register_question,
    reproduce,
    spread,
)
from cnnlab.reports.runs import Run
from cnnlab.reports.stats import Interval, compare, seeds_note, versus

#: Published CIFAR-10 test accuracies of a CNN and of a fully-connected net (each far bigger and trained far
#: longer than the ~95 k-parameter, few-minute runs here): what full training reaches.
PUBLISHED = {
    "simple_cnn": ("Krizhevsky's cuda-convnet layers-18pct, as reported by Snoek et al. 2012",
                   "a CNN, no augmentation", "82 % (18 % error)"),
    "mlp": ("Neyshabur 2020 (NeurIPS), β-LASSO", "a fully-connected net, the best published then", "84.50 %"),
}


def published(full: dict[str, Interval | None], runs: Sequence[Run]) -> list[Paper]:
    """The published CNN and fully-connected numbers beside ours (all training images), and our CNN's margin."""
    margin = versus("simple_cnn", full.get("simple_cnn"), "mlp", full.get("mlp"))
    return [Paper(source, f"CIFAR-10 test accuracy of {what} (cnnlab: {model} at ~95 k parameters; {margin})",
                  number, full[model].text() if full.get(model) else "not run", reproduce("weight_sharing", runs))
            for model, (source, what, number) in PUBLISHED.items()]


@register_question("weight_sharing")
def weight_sharing(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    curves: dict[str, dict[float, list[Run]]] = {}
    for run in (r for r in runs if r.ok):
        fraction = float(run.config.get("data", {}).get("train_fraction", 1.0))
        curves.setdefault(run.config["model"]["name"], {}).setdefault(fraction, []).append(run)
    fig, (ax,) = panels(1, width=5.5)
    at: dict[float, dict[str, Interval | None]] = {}
    for name, by_fraction in curves.items():
        fractions = sorted(by_fraction)
        acc = [spread(by_fraction[f], key("test/acc")) for f in fractions]
        size = spread(next(iter(by_fraction.values())), params)
        band(ax, [100 * f for f in fractions], acc, f"{name} ({size.mean / 1e3:.0f} k params)" if size else name)
        for f, a in zip(fractions, acc):
            at.setdefault(f, {})[name] = a
    ax.set_xscale("log")
    ax.set(xlabel="training images used (%)", ylabel="test accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    parts = [f"with {100 * f:g} % of the images, {compare(at[f], 'test accuracy')}" for f in sorted(at)]
    notes = seeds_note(v for by_model in at.values() for v in by_model.values())
    sentence = f"At matched parameters: {'; '.join(parts)} ({notes}, 95 % intervals)."
    papers = published(at.get(1.0, {}), runs) if data_option(runs).startswith("cifar10") else []
    caption = ("Test accuracy against the share of the training images, same steps for each; mean over seeds, "
               "band: 95 % interval.")
    return Finding(sentence, fig, caption, {
        "params": Column(params, "count"),
        "val acc. per M params": Column(key("weight_sharing/acc_per_mparam"), "plain"),
    }, papers)
