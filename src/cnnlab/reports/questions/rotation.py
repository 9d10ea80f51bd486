"""Do CNNs handle rotation? Accuracy against angle and first-layer filter rotation-similarity."""

from __future__ import annotations

from collections.abc import Sequence

from cnnlab.reports.questions.base import (
    Column,
    Finding,
    Paper,
    band,
    bars,
    data_option,
    key,
    panels,
    register_question,
    reproduce,
    spread,
    stage_curve,
)
from cnnlab.reports.runs import Run, by_setting
from cnnlab.reports.stats import Interval, compare, interval, seeds_note, versus


def angle_curve(runs: Sequence[Run]) -> dict[int, Interval | None]:
    return {int(a.removesuffix("deg")): v for a, v in stage_curve(runs, "rotation/acc/").items()}


#: Cohen & Welling 2016, Table 1: test error on MNIST-rot of the plain CNN and the same net with p4 convs.
COHEN_WELLING = {"simple_cnn": ("Z2CNN", "5.03 %"), "p4cnn": ("P4CNN", "2.28 %")}


def error(runs: Sequence[Run], model: str) -> Interval | None:
    return interval(1 - r.number("test/acc") for r in runs if r.ok and r.config["model"]["name"] == model
                    and r.number("test/acc") is not None)


def cohen_welling(runs: Sequence[Run]) -> tuple[str, list[Paper]]:
    """On MNIST-rot: the plain CNN against p4cnn, and the paper's two numbers beside ours."""
    errors = {model: error(runs, model) for model in COHEN_WELLING}
    papers = [Paper("Cohen & Welling 2016, Table 1", f"test error on MNIST-rot (12k training, 50k test digits): "
                    f"their {theirs}, cnnlab's {model}", published,
                    errors[model].text() if errors[model] else "not run", reproduce("rotation", runs))
              for model, (theirs, published) in COHEN_WELLING.items()]
    verdict = versus("p4cnn's test error", errors["p4cnn"], "simple_cnn's", errors["simple_cnn"])
    return f" On MNIST-rot, {verdict} (Cohen & Welling 2016: 2.28 % against 5.03 %).", papers


def mean_over_angles(run: Run) -> float | None:
    """A run's accuracy averaged over every rotation angle the probe tried."""
    values = list(run.matching("rotation/acc/").values())
    return sum(values) / len(values) if values else None


@register_question("rotation")
def rotation(runs: Sequence[Run], keys: Sequence[str]) -> Finding:
    groups = by_setting(runs, keys)
    fig, (left, right) = panels(2, height=3.4 + 0.18 * ((len(groups) + 1) // 2))  # room for the legend below
    similarity, baseline, turned, upright = {}, {}, {}, {}
    for name, group in groups.items():
        curve = angle_curve(group)
        band(left, list(curve), list(curve.values()), name)
        similarity[name] = spread(group, key("rotation/filter_similarity"))
        baseline[name] = spread(group, key("rotation/filter_similarity_random"))
        turned[name] = spread(group, mean_over_angles)
        upright[name] = spread(group, key("test/acc"))
    left.set(xlabel="rotation (degrees)", ylabel="accuracy (%)")
    left.set_xticks(range(-180, 181, 60))
    left.grid(alpha=0.3)
    # below the plot, not over it: at 8 settings a legend inside hides the upright peak
    left.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    if any(v is not None for v in similarity.values()):
        bars(right, list(similarity), list(similarity.values()), "filter rotation-similarity", scale=1.0,
             color="tab:green", offset=-0.2, width=0.4, legend="trained filters", bounds=None)
        bars(right, list(baseline), list(baseline.values()), "filter rotation-similarity", scale=1.0,
             color="tab:gray", offset=0.2, width=0.4, legend="random filters, same shape", bounds=None)
        right.legend(fontsize=8)
    sentence = (f"Averaged over rotations of the test images from −180° to 180°, {compare(turned, 'accuracy')}. "
                f"Upright, {compare(upright, 'test accuracy')} ({seeds_note(turned.values())}, 95 % intervals).")
    papers: list[Paper] = []
    if data_option(runs) == "mnist_rot":
        said, papers = cohen_welling(runs)
        sentence += said
    caption = ("Left: test-image accuracy against rotation angle, mean over seeds, band: 95 % interval. Right: each "
               "first-layer filter's best correlation with a 90/180/270°-rotated other filter, mean over filters, "
               "next to random filters of the same shape; error bars: 95 % interval over seeds.")
    return Finding(sentence, fig, caption, {
        "acc. over angles": Column(mean_over_angles),
        "acc. at 90°": Column(key("rotation/acc/+90deg")),
        "acc. at 180°": Column(key("rotation/acc/+180deg")),
        "filter similarity": Column(key("rotation/filter_similarity"), "plain"),
        "random filters": Column(key("rotation/filter_similarity_random"), "plain"),
    }, papers)
