"""Spread over seeds: the mean of one setting's runs with a 95 % Student-t interval, and the one rule every
answer follows: two settings differ only when their intervals separate; otherwise there is no clear difference.

The interval is mean ± t(0.975, n−1) · s / √n over the n seeds (s: the sample standard deviation). One seed has
no interval, so it never separates from anything."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from scipy import stats as scipy_stats

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    mean: float
    half: float | None     # half-width of the 95 % interval; None for a single value
    n: int

    @property
    def low(self) -> float:
        return self.mean - (self.half or 0.0)

    @property
    def high(self) -> float:
        return self.mean + (self.half or 0.0)

    def separated_from(self, other: Interval) -> bool:
        """True when both intervals exist and do not overlap: a difference the seeds cannot explain."""
        if self.half is None or other.half is None:
            return False
        return self.low > other.high or self.high < other.low

    def text(self, kind: str = "%") -> str:
        """'97.3 ± 0.4 %' (kind '%': a fraction shown in percent), '12.5 ± 1.1' (plain), '1,234 ± 56' (count)."""
        scale, unit = (100.0, " %") if kind == "%" else (1.0, "")
        if kind in ("count", "s"):
            body = f"{scale * self.mean:,.0f}" + ("" if self.half is None else f" ± {scale * self.half:,.0f}")
        elif kind == "%":
            body = f"{scale * self.mean:.1f}" + ("" if self.half is None else f" ± {scale * self.half:.1f}")
        else:  # the half-width at the mean's precision
            fixed = self.mean == 0 or 1e-2 <= abs(self.mean) < 1e3
            body = number(self.mean) + ("" if self.half is None else
                                        f" ± {self.half:.2f}" if fixed else f" ± {self.half:.2g}")
        return body + unit


def number(value: float) -> str:
    return f"{value:.3g}" if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e3) else f"{value:.2f}"


def interval(values: Iterable[float | None]) -> Interval | None:
    """Mean and 95 % Student-t interval of the values present (None skipped); None when there are none."""
    present = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not present:
        return None
    n = len(present)
    if n == 1:
        return Interval(present[0], None, 1)
    sem = statistics.stdev(present) / math.sqrt(n)
    return Interval(statistics.fmean(present), float(scipy_stats.t.ppf((1 + LEVEL) / 2, n - 1)) * sem, n)


def ranking(values: Mapping[str, Interval | None], higher: bool = True) -> tuple[str, list[str], list[str]]:
    """(the setting with the best mean, the settings clearly behind it, the ones not clearly different)."""
    present = {name: v for name, v in values.items() if v is not None}
    best = (max if higher else min)(present, key=lambda name: present[name].mean)
    behind = [n for n in present if n != best and present[n].separated_from(present[best])]
    tied = [n for n in present if n != best and n not in behind]
    return best, behind, tied


def compare(values: Mapping[str, Interval | None], what: str, higher: bool = True, kind: str = "%") -> str:
    """One significance-aware clause: 'blur has the highest consistency (90.0 ± 1.0 %); clearly above max
    (85.1 ± 0.8 %), avg (…); no clear difference from sum (88.4 ± 2.1 %)'."""
    if not any(v is not None for v in values.values()):
        return f"no setting has a {what} yet"
    best, behind, tied = ranking(values, higher)
    shown = {n: values[n].text(kind) for n in values if values[n] is not None}
    word = "highest" if higher else "lowest"
    parts = [f"{best} has the {word} {what} ({shown[best]})"]
    if behind:
        parts.append(f"clearly {'above' if higher else 'below'} " + ", ".join(f"{n} ({shown[n]})" for n in behind))
    if tied:
        parts.append("no clear difference from " + ", ".join(f"{n} ({shown[n]})" for n in tied))
    return "; ".join(parts)


def versus(a_name: str, a: Interval | None, b_name: str, b: Interval | None, kind: str = "%") -> str:
    """'p4cnn 97.1 ± 0.3 % against simple_cnn 94.0 ± 0.5 %: clearly higher' (or '…: no clear difference')."""
    if a is None or b is None:
        return f"{a_name} against {b_name}: not measured"
    verdict = ("clearly higher" if a.mean > b.mean else "clearly lower") if a.separated_from(b) else \
        "no clear difference"
    return f"{a_name} {a.text(kind)} against {b_name} {b.text(kind)}: {verdict}"


def seeds_note(intervals: Iterable[Interval | None]) -> str:
    """'3 seeds per setting' (or '2–3 seeds per setting'): how many runs each interval rests on."""
    counts = sorted({i.n for i in intervals if i is not None})
    if not counts:
        return "no finished run"
    span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"{span} seed{'s' if counts[-1] > 1 else ''} per setting"
