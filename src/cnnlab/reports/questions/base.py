"""What every question module shares: the registry (`@register_question("<name>")`), the `Finding` a question
returns (its one-line answer, its plot, the numbers the side-by-side table shows) and small plotting helpers.
Seeds of one setting are averaged."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from matplotlib.figure import Figure

from cnnlab.pictures.render import figure
from cnnlab.registry import Registry
from cnnlab.reports.runs import Run, mean

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


#: A question's answer from its runs and the override keys that tell them apart.
Answer = Callable[[Sequence[Run], Sequence[str]], Finding]
QUESTIONS: Registry[Answer] = Registry("question", config_key="question")
register_question = QUESTIONS.register


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
