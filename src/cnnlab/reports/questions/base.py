"""What every question module shares: the registry (`@register_question("<name>")`), the `Finding` a question
returns (its one-line answer, its plot, the numbers the side-by-side table shows) and small plotting helpers.
The seeds of one setting give a mean and a 95 % interval (reports/stats.py); plots draw the interval as error
bars or bands, and sentences call a difference only where intervals separate."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from cnnlab.pictures.render import figure
from cnnlab.registry import Registry
from cnnlab.reports.runs import Run
from cnnlab.reports.stats import Interval, interval

Getter = Callable[[Run], float | None]


@dataclass
class Column:
    """One number per run in the table, and how to write it: '%' (a fraction), 'count', 's' or 'plain'."""

    get: Getter
    kind: str = "%"

    def cell(self, run: Run) -> str:
        value = self.get(run)
        return "–" if value is None else Interval(value, None, 1).text(self.kind)

    def summary(self, runs: Sequence[Run]) -> str:
        """The seeds of one setting: mean ± 95 % interval."""
        value = interval(self.get(run) for run in runs)
        return "–" if value is None else value.text(self.kind)


@dataclass
class Paper:
    """A published number and ours for the same kind of measurement, side by side in the report."""

    source: str      # "Cohen & Welling 2016, Table 1"
    measured: str    # what both numbers measure, and on what
    published: str
    ours: str        # from the runs, with its interval
    command: str     # what reproduces ours


@dataclass
class Finding:
    sentence: str                     # the answer, in one line, from the numbers
    figure: Figure                    # the key plot
    caption: str
    columns: dict[str, Column] = field(default_factory=dict)  # header → number, for the table
    papers: list[Paper] = field(default_factory=list)         # the published numbers beside ours


def data_option(runs: Sequence[Run]) -> str:
    """The `data=` option the runs were started with (make experiment DATA=...), else their data.name."""
    for run in runs:
        if (chosen := run.setting("data")) is not None:
            return chosen
    return str(runs[0].config.get("data", {}).get("name", "mnist")) if runs else "mnist"


def reproduce(question: str, runs: Sequence[Run]) -> str:
    return f"make experiment NAME={question} DATA={data_option(runs)}"


#: A question's answer from its runs and the override keys that tell them apart.
Answer = Callable[[Sequence[Run], Sequence[str]], Finding]
QUESTIONS: Registry[Answer] = Registry("question", config_key="question")
register_question = QUESTIONS.register


def key(name: str) -> Getter:
    return lambda run: run.number(name)


def spread(runs: Sequence[Run], get: Getter) -> Interval | None:
    """Mean and 95 % interval of one number over the runs (the seeds of one setting)."""
    return interval(get(run) for run in runs)


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


FRACTION = (0.0, 1.0)   # accuracies and probe scores: an interval past these bounds is drawn clipped at them


def clipped(value: Interval, bounds: tuple[float, float] | None) -> tuple[float, float]:
    """The 95 % interval's (low, high), cut at `bounds`: three seeds that disagree wildly give a t-interval
    past 0 or 100 % accuracy, which no run can reach and which squeezes every other point of the figure."""
    if bounds is None:
        return value.low, value.high
    return max(value.low, bounds[0]), min(value.high, bounds[1])


def error_extent(values: Sequence[Interval | None], scale: float,
                 bounds: tuple[float, float] | None = FRACTION) -> list[list[float]]:
    """matplotlib's yerr: lengths below and above each mean of its (clipped) 95 % interval."""
    below, above = [], []
    for v in values:
        low, high = clipped(v, bounds) if v is not None else (0.0, 0.0)
        mean = v.mean if v is not None else 0.0
        below.append(scale * max(mean - low, 0.0))
        above.append(scale * max(high - mean, 0.0))
    return [below, above]


def bars(ax, labels: Sequence[str], values: Sequence[Interval | None], ylabel: str, scale: float = 100.0,
         color: str = "tab:blue", offset: float = 0.0, width: float = 0.8, legend: str | None = None,
         bounds: tuple[float, float] | None = FRACTION) -> None:
    """One bar per setting at its mean, with its 95 % interval (clipped at `bounds`) as an error bar."""
    xs = [x + offset for x in range(len(labels))]
    ax.bar(xs, [scale * v.mean if v is not None else 0.0 for v in values], width=width, color=color,
           yerr=error_extent(values, scale, bounds), capsize=3, ecolor="black", label=legend)
    ax.set_xticks(range(len(labels)), [short(n) for n in labels], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")


def band(ax, xs: Sequence[float], values: Sequence[Interval | None], label: str, scale: float = 100.0,
         bounds: tuple[float, float] | None = FRACTION) -> None:
    """A curve of means with its 95 % interval (clipped at `bounds`) as a shaded band (points without a value
    are left out)."""
    points = [(x, v) for x, v in zip(xs, values) if v is not None]
    if not points:
        return
    px = [x for x, _ in points]
    (line,) = ax.plot(px, [scale * v.mean for _, v in points], marker="o", label=label)
    edges = [clipped(v, bounds) for _, v in points]
    ax.fill_between(px, [scale * low for low, _ in edges], [scale * high for _, high in edges],
                    color=line.get_color(), alpha=0.2, linewidth=0)


# Where a point's name may go, in points from the point, tried in this order: right-above, right-below,
# left-above, left-below, then further up and down.
LABEL_SPOTS = ((4, 3), (4, -10), (-4, 3), (-4, -10), (4, 12), (4, -19), (-4, 12), (-4, -19))


def label_points(ax, points: Sequence[tuple[str, tuple[float, float]]], fontsize: float = 7, **style) -> None:
    """Name each point beside it where the name covers no other point and no name placed before (left to right;
    the first spot if every spot is taken): two models of about the same size and accuracy, or two stages of about
    the same probe accuracy, no longer print one name over the other. Names may repeat (each curve's "logits")."""
    ax.get_xlim(), ax.get_ylim()                     # settle autoscaled limits before reading positions
    renderer = ax.figure.canvas.get_renderer()
    marker = renderer.points_to_pixels(4.0)
    dots = [Bbox.from_bounds(x - marker, y - marker, 2 * marker, 2 * marker)
            for x, y in ax.transData.transform([xy for _, xy in points])] if points else []

    def place(name: str, xy: tuple[float, float], spot: tuple[int, int]):
        text = ax.annotate(name, xy, textcoords="offset points", xytext=spot, fontsize=fontsize,
                           ha="left" if spot[0] > 0 else "right", **style)
        return text, text.get_window_extent(renderer)

    taken = []
    for i in sorted(range(len(points)), key=lambda i: points[i][1]):
        name, xy = points[i]
        others = taken + dots[:i] + dots[i + 1:]
        for spot in LABEL_SPOTS:
            text, box = place(name, xy, spot)
            if not any(box.overlaps(other) for other in others):
                break
            text.remove()
        else:
            text, box = place(name, xy, LABEL_SPOTS[0])
        taken.append(box)


def stage_curve(runs: Sequence[Run], prefix: str, skip: Sequence[str] = ()) -> dict[str, Interval | None]:
    """Stage → mean and 95 % interval over the runs of the probe numbers under `prefix`, in the first run's
    stage order."""
    stages = [s for s in runs[0].matching(prefix) if s not in skip]
    return {s: interval(run.matching(prefix).get(s) for run in runs) for s in stages}
