"""`make bench` itself: ratios are medians of side-by-side pairs, and its two cheapest measures run for real
on a tiny config (the numbers themselves belong to `make bench`, not to tests)."""

from __future__ import annotations

import pytest

from benchmarks import cifar, data_path, overhead
from benchmarks.__main__ import main, replace_section, rows
from benchmarks.common import Ratio, paired


def test_a_ratio_is_the_median_of_its_pairs_with_their_spread_and_says_whether_it_meets_its_target():
    r = Ratio("overhead", "a / b", "ms", a=[10.0, 30.0, 11.0], b=[10.0, 10.0, 10.0], target="≤ 1.05")
    assert r.value == pytest.approx(1.1) and r.met() is False  # the slow outlier pair does not decide it
    assert r.spread == pytest.approx((1.0, 3.0))
    assert Ratio("sweep", "", "", a=[2.0], b=[1.0], target="≥ 1.6").met() is True
    assert r.as_dict()["ratio"] == 1.1 and Ratio("x", "", "", a=[1.0], b=[1.0]).met() is None
    (row,) = rows([r], {})
    assert row[4] == "1.100 (1.000–3.000)" and row[5] == "3" and row[6] == "≤ 1.05 ✗"
    # a bound on B itself (a cached start's seconds) must hold too
    decode = Ratio("decode", "", "s", a=[30.0, 31.0], b=[0.5, 6.0], b_target="≤ 5")
    assert decode.met() is True and Ratio("d", "", "s", a=[30.0], b=[6.0], b_target="≤ 5").met() is False


def test_pairs_come_after_a_warm_up_pair_that_is_thrown_away():
    calls = iter([50.0, 10.0, 11.0, 10.0, 12.0, 10.0])  # the first (warm-up) pair is slow
    ratio = paired(Ratio("x", "", "s"), lambda: next(calls), lambda: next(calls), pairs=2)
    assert ratio.a == [11.0, 12.0] and ratio.b == [10.0, 10.0]


def test_the_frontier_table_marks_the_budgets_that_meet_the_target_and_the_readme_section_is_rewritten(tmp_path):
    budgets = [cifar.Budget(3, [2.0, 2.2], [0.70, 0.72]), cifar.Budget(12, [8.0, 8.4, 9.1], [0.851, 0.856, 0.849])]
    table = cifar.frontier_table(budgets)
    assert table[2] == "| 3 | 2.10 (2.00–2.20) | 71.00 (70.00–72.00) | 2 |"
    assert table[3] == "| 12 | 8.40 (8.00–9.10) | 85.10 (84.90–85.60) ✓ | 3 |"
    plot = cifar.frontier_plot(budgets, tmp_path / "frontier.png", "a machine", "2026-12-02")
    assert plot.stat().st_size > 10_000
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- cifar10_fast:start -->\nold\n<!-- cifar10_fast:end -->\nafter\n")
    replace_section(readme, "cifar10_fast", table)
    text = readme.read_text()
    assert "old" not in text and table[3] in text and text.startswith("before") and text.endswith("after\n")


@pytest.mark.slow
def test_overhead_and_data_measure_real_steps_on_both_paths():
    tiny = ["data.batch_size=64", "logger=none", "callbacks=base"]
    ratio = overhead.measure(tiny, pairs=1, steps=15)
    assert len(ratio.a) == len(ratio.b) == 1 and ratio.a[0] > 0 and ratio.b[0] > 0
    fast = data_path.images_per_second(tiny, resident=True, batches=60)  # as `measure` does: many more resident
    # batches, each a fraction of a millisecond, so one scheduler hiccup on a busy machine cannot decide the order
    slow = data_path.images_per_second([*tiny, "data.num_workers=0"], resident=False, batches=3)
    assert fast > slow > 0


def test_an_unknown_benchmark_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        main(["--only", "overhead,speed"])
    assert ("--only speed: not a benchmark; valid: overhead,data,logging,sweep,cifar_overhead,cifar_data,decode,"
            "cifar_pictures,cifar_pictures_untimed,cifar10_fast,explore") in capsys.readouterr().err
