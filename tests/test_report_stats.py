"""Spread over seeds: the 95 % Student-t interval, the rule that a difference is called only when intervals
separate, and cnnlab-report on a sweep with a seed axis and a known spread (any sweep, not only the questions)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml
from matplotlib.container import ErrorbarContainer

from cnnlab.reports.runs import by_setting, find_runs, is_seed, varying
from cnnlab.reports.stats import Interval, compare, interval, versus

T_2 = 4.302652729911275  # t(0.975, 2 degrees of freedom): 3 seeds


def test_interval_is_student_t_over_the_seeds():
    spread = interval([0.90, 0.92, 0.94])
    assert spread.n == 3 and spread.mean == pytest.approx(0.92)
    assert spread.half == pytest.approx(T_2 * 0.02 / math.sqrt(3))
    assert spread.text() == "92.0 ± 5.0 %"
    assert interval([0.5, None]) == Interval(0.5, None, 1) and interval([None]) is None
    assert interval([0.5]).text() == "50.0 %"  # one seed: no interval, and it never separates
    assert not interval([0.5]).separated_from(interval([0.1, 0.1000001]))


def test_a_difference_is_called_only_when_intervals_separate():
    clear = {"blur": interval([0.90, 0.91, 0.92]), "max": interval([0.80, 0.81, 0.82]),
             "sum": interval([0.86, 0.90, 0.94])}
    sentence = compare(clear, "consistency")
    assert sentence.startswith("blur has the highest consistency (91.0 ± 2.5 %)")
    assert "clearly above max (81.0 ± 2.5 %)" in sentence
    assert "no clear difference from sum (90.0 ± 9.9 %)" in sentence
    assert compare(clear, "error", higher=False).startswith("max has the lowest error")
    assert versus("a", clear["blur"], "b", clear["max"]).endswith("clearly higher")
    assert versus("a", clear["blur"], "b", clear["sum"]).endswith("no clear difference")


def test_seeds_are_recognised_by_their_config_key():
    assert is_seed("seed") and is_seed("data.split_seed") and is_seed("+seed")
    assert not is_seed("pooling") and not is_seed("model.depth")


def write_run(job: Path, overrides: list[str], config: dict, results: dict) -> None:
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    (job / "config.yaml").write_text(yaml.safe_dump(config))
    (job / "results.json").write_text(json.dumps(results))


#: A sweep without a question: optimizer.lr × data.split_seed (a seed axis of another name), known spread.
KNOWN = {"0.1": [0.90, 0.92, 0.94], "0.01": [0.50, 0.52, 0.54]}


@pytest.fixture
def seeded_sweep(tmp_path) -> Path:
    sweep = tmp_path / "sweep"
    job = 0
    for lr, accs in KNOWN.items():
        for split_seed, acc in enumerate(accs):
            write_run(sweep / str(job), [f"optimizer.lr={lr}", f"data.split_seed={split_seed}"],
                      {"seed": 42, "data": {"split_seed": split_seed}, "optimizer": {"lr": float(lr)}},
                      {"test/acc": acc, "val/best": acc, "wall_time_s": 10.0 + job})
            job += 1
    return sweep


def test_any_sweep_with_a_seed_axis_gets_intervals(seeded_sweep, capsys):
    from cnnlab.reports.cli import main
    from cnnlab.reports.render import build

    runs = find_runs([seeded_sweep])
    keys, _ = varying(runs)
    assert sorted(by_setting(runs, keys)) == ["optimizer.lr=0.01", "optimizer.lr=0.1"]  # seeds folded
    report = build(runs)
    assert report.question == "overview" and report.seeds == ["data.split_seed"]
    assert report.summary_header[:3] == ["optimizer.lr", "seeds", "test acc."]
    half = 100 * T_2 * 0.02 / math.sqrt(3)
    assert report.summary_rows[0][:3] == ["0.1", "3", f"92.0 ± {half:.1f} %"]
    assert report.summary_rows[1][:3] == ["0.01", "3", f"52.0 ± {half:.1f} %"]
    assert report.finding.sentence.startswith("optimizer.lr=0.1 has the highest test accuracy (92.0 ± 5.0 %); "
                                              "clearly above optimizer.lr=0.01 (52.0 ± 5.0 %)")
    (ax,) = report.finding.figure.axes  # the bars carry the intervals as error bars
    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    lows = sorted(seg[0][1] for seg in bars.lines[2][0].get_segments())
    assert lows == pytest.approx([52.0 - half, 92.0 - half])

    assert main([str(seeded_sweep)]) == 0
    md = (seeded_sweep / "report.md").read_text()
    assert "## Per setting: mean ± 95 % interval over the seeds (data.split_seed" in md
    assert f"| 0.1 | 3 | 92.0 ± {half:.1f} % |" in md and "## Every run" in md
    assert md.count("| ok |") == 6  # every run still listed
    assert "92.0 ± 5.0 %" in capsys.readouterr().out


def test_overlapping_seeds_say_no_clear_difference(seeded_sweep):
    from cnnlab.reports.render import build

    for job, acc in zip(range(3, 6), [0.88, 0.93, 0.98]):  # lr=0.01 now overlaps lr=0.1
        results = json.loads((seeded_sweep / str(job) / "results.json").read_text())
        (seeded_sweep / str(job) / "results.json").write_text(json.dumps({**results, "test/acc": acc}))
    sentence = build(find_runs([seeded_sweep])).finding.sentence
    assert "no clear difference from optimizer.lr=0.1 (92.0 ± 5.0 %)" in sentence
    assert "clearly" not in sentence


def test_the_papers_table_is_rebuilt_from_the_committed_reports(tmp_path):
    """experiments/README.md's table of published numbers holds what the reports computed, never a hand copy."""
    from cnnlab.reports.papers import END, START, refresh
    from cnnlab.reports.questions.base import Finding, Paper
    from cnnlab.reports.render import Report, write

    readme = tmp_path / "README.md"
    readme.write_text(f"# experiments\n\n{START}\nold text\n{END}\n\nafter\n")
    paper = Paper("Cohen & Welling 2016, Table 1", "test error on MNIST-rot", "2.28 %", "2.9 ± 0.2 %",
                  "make experiment NAME=rotation DATA=mnist_rot")
    from matplotlib.figure import Figure

    report = Report("t", "rotation", Finding("s", Figure(), "c", papers=[paper]), ["run", "result"], [], [], [])
    written = write(report, [], tmp_path / "rotation" / "mnist_rot")
    assert json.loads(written["papers"].read_text())[0]["published"] == "2.28 %"
    assert refresh(readme)
    text = readme.read_text()
    assert "old text" not in text and text.endswith("after\n")
    assert ("| [rotation](rotation/mnist_rot/report.md) (mnist_rot) | Cohen & Welling 2016, Table 1 | test error on "
            "MNIST-rot | 2.28 % | 2.9 ± 0.2 % | `make experiment NAME=rotation DATA=mnist_rot` |") in text
    assert not refresh(tmp_path / "rotation" / "mnist_rot" / "report.md")  # no markers: left alone


def fake_run(tmp_path: Path, name: str, overrides: list[str], config: dict, results: dict, probes: dict):
    from cnnlab.reports.runs import Run

    return Run(tmp_path / name, name, overrides, config, results, None, probes)


def test_the_erf_exponent_is_fitted_per_seed_against_luo(tmp_path):
    """σ = 2·depth^0.5 (trained) and 3·depth^0.3 (at init), seed by seed with a small known wobble: the report
    recovers both exponents and puts Luo et al.'s 0.5 beside them."""
    from cnnlab.reports.render import build

    runs = []
    for seed, wobble in ((1, 0.98), (2, 1.0), (3, 1.02)):
        for depth in (1, 2, 3, 4):
            blocks = {f"block{d}": d for d in range(1, depth + 1)}
            probes = {**{f"receptive_field/erf_sigma/{b}": 2 * wobble * d ** 0.5 for b, d in blocks.items()},
                      **{f"receptive_field/init/erf_sigma/{b}": 3 * d ** 0.3 for b, d in blocks.items()},
                      **{f"receptive_field/theoretical/{b}": 1 + 2 * d for b, d in blocks.items()}}
            runs.append(fake_run(tmp_path, f"{seed}-{depth}", [f"model.depth={depth}", f"seed={seed}"],
                                 {"question": "receptive_field", "seed": seed, "pooling": {"name": "none"},
                                  "model": {"depth": depth, "kernel_size": 3}},
                                 {"test/acc": 0.9, "wall_time_s": 1.0}, probes))
    report = build(runs)
    (paper,) = report.finding.papers
    assert paper.source == "Luo et al. 2016" and paper.published == "0.5 (√depth)"
    assert paper.ours == "trained b = 0.50 ± 0.00 and at init b = 0.30 ± 0.00"
    assert "k=3 pooling=none: trained b = 0.50 ± 0.00, at init b = 0.30 ± 0.00" in report.finding.sentence


def test_mnist_rot_puts_cohen_and_welling_beside_ours_and_says_whether_p4cnn_is_clearly_better(tmp_path):
    from cnnlab.reports.render import build

    accs = {"simple_cnn": [0.940, 0.945, 0.950], "p4cnn": [0.970, 0.972, 0.974]}
    runs = [fake_run(tmp_path, f"{model}{seed}", [f"model={model}", f"seed={seed}", "data=mnist_rot"],
                     {"question": "rotation", "seed": seed, "model": {"name": model}, "data": {"name": "mnist_rot"}},
                     {"test/acc": acc, "wall_time_s": 1.0}, {"rotation/acc/+0deg": acc, "rotation/acc/+90deg": acc})
            for model, values in accs.items() for seed, acc in zip((1, 2, 3), values)]
    finding = build(runs).finding
    assert [(p.published, p.ours) for p in finding.papers] == [("5.03 %", "5.5 ± 1.2 %"), ("2.28 %", "2.8 ± 0.5 %")]
    assert all(p.command == "make experiment NAME=rotation DATA=mnist_rot" for p in finding.papers)
    assert "On MNIST-rot, p4cnn's test error 2.8 ± 0.5 % against simple_cnn's 5.5 ± 1.2 %: clearly lower" in \
        finding.sentence


def test_an_experiment_s_sweeps_merge_into_one_report(tmp_path):
    """A top-up sweep adds seeds; a rerun replaces a run; a run whose budget changed since is left out, and said."""
    from cnnlab.reports.runs import merge_sweeps

    def sweep(name: str, jobs: list[tuple[str, int, int]]) -> Path:
        for job, (pooling, seed, epochs) in enumerate(jobs):
            write_run(tmp_path / name / str(job), [f"pooling={pooling}", f"seed={seed}"],
                      {"seed": seed, "pooling": {"name": pooling}, "trainer": {"max_epochs": epochs},
                       "paths": {"output_dir": str(tmp_path / name / str(job))}},
                      {"test/acc": 0.9, "wall_time_s": 1.0})
        return tmp_path / name

    first = sweep("2026-12-02_10-00-00", [(p, s, 1) for p in ("max", "avg") for s in (1, 2, 3)])
    top_up = sweep("2026-12-02_11-00-00", [("max", 4, 1), ("max", 5, 1)])
    rerun = sweep("2026-12-02_12-00-00", [("avg", 1, 2)])  # avg again, with another budget
    runs, left_out = merge_sweeps([first, top_up, rerun])
    assert sorted(r.name for r in runs) == ["2026-12-02_10-00-00/0", "2026-12-02_10-00-00/1", "2026-12-02_10-00-00/2",
                                            "2026-12-02_11-00-00/0", "2026-12-02_11-00-00/1", "2026-12-02_12-00-00/0"]
    assert len(left_out) == 2 and all("differs from the newest run of its setting in trainer.max_epochs" in note
                                      for note in left_out)
    assert "2026-12-02_10-00-00/4" in left_out[0] or "2026-12-02_10-00-00/4" in left_out[1]


def test_the_architectures_figure_cuts_wild_seed_intervals_at_0_and_100_percent(tmp_path):
    """ZF Net's three MNIST seeds of 2026-12-04 (82.4, 10.5, 83.0 %) give a 95 % t-interval of ± 103.6 points: the
    figure draws it cut at 0 and 100 % and keeps its axis inside them, so the other models' points stay readable."""
    from matplotlib.collections import LineCollection

    from cnnlab.reports.render import build

    accs = {"zfnet": ([0.824, 0.105, 0.830], 3_800_000), "googlenet": ([0.975, 0.985, 0.986], 6_000_000)}
    runs = [fake_run(tmp_path, f"{model}{seed}", [f"model={model}", f"seed={seed}"],
                     {"question": "architectures", "seed": seed, "model": {"name": model}, "data": {"name": "mnist"}},
                     {"test/acc": acc, "params": size, "wall_time_s": 1.0}, {})
            for model, (values, size) in accs.items() for seed, acc in zip((1, 2, 3), values)]
    finding = build(runs).finding
    assert "zfnet (58.6 ± 103.6 %)" in finding.sentence       # the sentence keeps the honest interval
    (ax,) = finding.figure.axes
    low, high = ax.get_ylim()
    assert 0.0 <= low and high <= 100.0
    bars = [seg for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()]
    spans = sorted((round(seg[:, 1].min(), 1), round(seg[:, 1].max(), 1)) for seg in bars)
    assert spans[0] == (0.0, 100.0)                              # zfnet's bar: cut at both ends
    assert 95.0 < spans[1][0] < spans[1][1] <= 100.0             # googlenet's: its own, inside the bounds


def test_the_architectures_figure_names_models_of_one_size_and_accuracy_without_overprinting(tmp_path):
    """capsnet and VGG-11 on CIFAR-10, 2026-12-04: 7,992,576 and 9,753,674 parameters, 39.8 and 40.1 % over
    three seeds. Drawn at the point, one name printed over the other; each name now sits beside its own point
    where no other name is."""
    from cnnlab.reports.render import build

    accs = {"capsnet": ([0.4040, 0.3923, 0.3979], 7_992_576), "vgg11": ([0.4145, 0.4021, 0.3873], 9_753_674),
            "resnet20": ([0.3876, 0.4479, 0.3866], 277_642)}
    runs = [fake_run(tmp_path, f"{model}{seed}", [f"model={model}", f"seed={seed}"],
                     {"question": "architectures", "seed": seed, "model": {"name": model},
                      "data": {"name": "cifar10_jpeg"}},
                     {"test/acc": acc, "params": size, "wall_time_s": 1.0}, {})
            for model, (values, size) in accs.items() for seed, acc in zip((1, 2, 3), values)]
    (ax,) = build(runs).finding.figure.axes
    renderer = ax.figure.canvas.get_renderer()
    names = {t.get_text(): t for t in ax.texts}
    assert set(names) == set(accs)
    boxes = {name: t.get_window_extent(renderer) for name, t in names.items()}
    assert not boxes["capsnet"].overlaps(boxes["vgg11"])
    for name, (values, size) in accs.items():       # each name within a line of its own point
        x, y = ax.transData.transform((size, 100 * sum(values) / 3))
        box = boxes[name]
        assert box.x0 - 10 <= x <= box.x1 + 10 and box.y0 - 25 <= y <= box.y1 + 25
