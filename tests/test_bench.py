"""`make bench` itself: ratios are medians of side-by-side pairs, and its two cheapest measures run for real
on a tiny config (the numbers themselves belong to `make bench`, not to tests)."""

from __future__ import annotations

import pytest

from benchmarks import data_path, overhead
from benchmarks.__main__ import main
from benchmarks.common import Ratio


def test_a_ratio_is_the_median_of_its_pairs_and_says_whether_it_meets_its_target():
    r = Ratio("overhead", "a / b", "ms", a=[10.0, 30.0, 11.0], b=[10.0, 10.0, 10.0], target="≤ 1.05")
    assert r.value == pytest.approx(1.1) and r.met() is False  # the slow outlier pair does not decide it
    assert Ratio("sweep", "", "", a=[2.0], b=[1.0], target="≥ 1.6").met() is True
    assert r.as_dict()["ratio"] == 1.1 and Ratio("x", "", "", a=[1.0], b=[1.0]).met() is None


def test_overhead_and_data_measure_real_steps_on_both_paths():
    tiny = ["data.batch_size=64", "logger=none", "callbacks=base"]
    ratio = overhead.measure(tiny, pairs=1, steps=15)
    assert len(ratio.a) == len(ratio.b) == 1 and ratio.a[0] > 0 and ratio.b[0] > 0
    fast = data_path.images_per_second(tiny, resident=True, batches=3)
    slow = data_path.images_per_second([*tiny, "data.num_workers=0"], resident=False, batches=3)
    assert fast > slow > 0


def test_an_unknown_benchmark_is_refused_by_name(capsys):
    with pytest.raises(SystemExit):
        main(["--only", "overhead,speed"])
    assert "--only speed: not a benchmark; valid: overhead,data,logging,sweep" in capsys.readouterr().err
