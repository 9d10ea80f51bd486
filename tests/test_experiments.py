"""experiments/<question>/: every experiment is documented, composes and runs one real step with its own
callbacks; cnnlab-report turns real runs into a table, plots and an answer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from cnnlab import CONF_DIR, REPO_ROOT
from cnnlab.reports.questions import QUESTIONS
from helpers import CLI, compose_run, run_cli

EXPERIMENTS = sorted(p.parent.name for p in (REPO_ROOT / "experiments").glob("*/config.yaml"))
QUESTIONS_ASKED = ["abstraction", "pooling", "nonlinearity", "receptive_field", "weight_sharing", "rotation",
                   "architectures"]


def experiment_config(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "experiments" / name / "config.yaml").read_text())


def first_point(name: str) -> list[str]:
    """The first job of the experiment's sweep, as overrides."""
    params = experiment_config(name)["hydra"]["sweeper"]["params"]
    return [f"{key}={str(values).split(',')[0]}" for key, values in params.items()]


def test_every_seed_question_is_an_experiment():
    assert EXPERIMENTS == sorted(QUESTIONS_ASKED)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_is_documented_and_reachable(name):
    folder = REPO_ROOT / "experiments" / name
    config = experiment_config(name)
    assert (folder / "config.yaml").read_text().startswith("# @package _global_")
    assert config["question"] == name and name in QUESTIONS
    assert config["hydra"]["mode"] == "MULTIRUN" and "seed" in config["hydra"]["sweeper"]["params"]
    # `experiment=<name>` finds the folder's config by itself (no file of that name under conf/experiment/)
    assert not (CONF_DIR / "experiment" / f"{name}.yaml").exists()
    # A key set under a group the sweep switches applies to every option of it. A knob every option has
    # (model.depth) is a matched setting; a key some option lacks leaks into it (transforms.affine would
    # make transforms=normalize rotate too), so each option must carry such settings itself.
    for group, options in config["hydra"]["sweeper"]["params"].items():
        for option in str(options).split(",") if (CONF_DIR / group).is_dir() else []:
            own = yaml.safe_load((CONF_DIR / group / f"{option}.yaml").read_text()) or {}
            leaked = set(config.get(group, {})) - set(own)
            assert not leaked, f"{name} sets {group}.{leaked} for every {group}, and {group}={option} has no such key"
    readme = (folder / "README.md").read_text()
    assert f"make experiment NAME={name}" in readme and "## Answer" in readme


@pytest.mark.parametrize("name", EXPERIMENTS)
@pytest.mark.slow
def test_experiment_runs_one_step(name, tmp_path):
    """One real training step of the sweep's first job, with the experiment's own callbacks: every probe
    it asks for leaves its numbers."""
    from cnnlab.train import train

    cfg = compose_run(f"experiment={name}", *first_point(name), "trainer.fast_dev_run=true",
                      run_dir=tmp_path / "run", callbacks=None)
    assert cfg.question == name
    results = train(cfg)
    assert 0 <= results["test/acc"] <= 1 and results["params"] > 0
    probes = [p for p in cfg.callbacks if p in ("linear_probe", "cka", "receptive_field", "translation",
                                                "rotation", "linearity", "weight_sharing")]
    summary = json.loads((tmp_path / "run" / "probes" / "summary.json").read_text()) if probes else {}
    for probe in probes:
        assert any(k.startswith(f"{probe}/") for k in summary), (probe, sorted(summary))
    # what the reports need beyond the numbers: the ERF before training (Luo et al.'s fit at init), and each
    # stage's Gram matrix (stages matched across seeds, Kornblith et al.)
    if name == "receptive_field":
        assert any(k.startswith("receptive_field/init/erf_sigma/block") for k in summary), sorted(summary)
    if name == "abstraction":
        assert (tmp_path / "run" / "probes" / "cka_grams.pt").stat().st_size > 0


@pytest.fixture(scope="module")
def pooling_sweep(tmp_path_factory) -> Path:
    """A real 4-job sweep of the pooling experiment (2 poolings × 2 seeds, 20 batches each), launched as a user
would."""
    cwd = tmp_path_factory.mktemp("report")
    done = run_cli("-m", "experiment=pooling", "pooling=max,avg", "seed=1,2", "debug=test", "logger=csv",
                   "trainer.limit_val_batches=2", "trainer.limit_test_batches=2", cwd=cwd)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Report: cnnlab-report" in done.stdout
    (sweep,) = (cwd / "logs" / "experiments" / "pooling" / "mnist").iterdir()
    return sweep


def report_cli(*args: str, cwd: Path):
    import subprocess

    return subprocess.run([str(Path(CLI).parent / "cnnlab-report"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={"COLUMNS": "200", "PATH": str(Path(CLI).parent)})


@pytest.mark.slow
def test_report_of_a_sweep(pooling_sweep):
    done = report_cli(str(pooling_sweep), cwd=pooling_sweep)
    assert done.returncode == 0, done.stderr
    md = (pooling_sweep / "report.md").read_text()
    every_run = md.split("## Every run")[1]
    rows = [line for line in every_run.splitlines() if line.startswith("| ") and "result" not in line]
    assert [row.split(" | ")[1:3] for row in rows] == [["max", "1"], ["max", "2"], ["avg", "1"], ["avg", "2"]]
    assert all(" ok " in row for row in rows)
    # the seed axis is recognised: one row per pooling, with the Student-t interval of its two runs
    results = [json.loads((pooling_sweep / str(job) / "results.json").read_text())["test/acc"] for job in range(4)]
    for pooling, pair in (("max", results[:2]), ("avg", results[2:])):
        half = 12.706204736174707 * abs(pair[0] - pair[1]) / 2  # t(0.975, 1) · s/√2, s = |a − b|/√2
        assert f"| {pooling} | 2 | {100 * sum(pair) / 2:.1f} ± {100 * half:.1f} % |" in md
    answer = md.split("**Answer:** ")[1].splitlines()[0]
    assert "±4 px" in answer and ("max" in answer and "avg" in answer) and "±" in answer
    assert "Answer:" in done.stdout and "report.md" in done.stdout
    for figure in ("figures/pooling.png", "figures/test_accuracy.png"):
        assert f"]({figure})" in md
        pixels = np.asarray(Image.open(pooling_sweep / figure).convert("L"))
        assert pixels.shape[1] > 400 and pixels.std() > 10  # a drawn plot, not a blank canvas
    html = (pooling_sweep / "report.html").read_text()
    assert html.count("<tr") == 3 + 5 and "figures/pooling.png" in html  # per setting (2 + header), every run
    with open(pooling_sweep / "runs.csv") as handle:
        table = list(csv.DictReader(handle))
    assert [row["pooling"] for row in table] == ["max", "max", "avg", "avg"]
    for row in table:
        assert 0 <= float(row["test/acc"]) <= 1 and 0 <= float(row["translation/consistency/shift4"]) <= 1


@pytest.mark.slow
def test_report_panel_shows_each_setting_drawn_from_its_checkpoint(pooling_sweep):
    """The sweep's runs drew no filters, examples or attribution (callbacks [base, translation]): the report draws
    them once from each setting's first run's checkpoint, keeps them in its pictures/, and shows them side by side."""
    from cnnlab.module import ImageClassifier
    from cnnlab.pictures.filters import filter_pictures
    from cnnlab.pictures.store import read_index

    done = report_cli(str(pooling_sweep), cwd=pooling_sweep)
    assert done.returncode == 0, done.stderr
    md = (pooling_sweep / "report.md").read_text()
    for spec in ("filters_first", "examples_block3", "attribution_methods"):
        assert f"](figures/panel_{spec}.png)" in md
        pixels = np.asarray(Image.open(pooling_sweep / "figures" / f"panel_{spec}.png").convert("L"))
        assert pixels.std() > 10
    assert "filters/first (seed 1 of each), one per setting" in md
    for job in ("0", "2"):  # seed 1 of max and of avg
        drawn = {e["key"]: e for e in read_index(pooling_sweep / job) if e["tag"] == "report"}
        assert {"filters/block1.conv", "examples/block3", "attribution/methods"} <= set(drawn)
        (best,) = (pooling_sweep / job / "checkpoints").glob("best-*.ckpt")
        net = ImageClassifier.load_from_checkpoint(best, map_location="cpu").net.eval()
        png = np.asarray(Image.open(pooling_sweep / job / "pictures" / drawn["filters/block1.conv"]["path"]))
        np.testing.assert_array_equal(png, filter_pictures(net)[0].image)
    assert not any(e["tag"] == "report" for job in ("1", "3") for e in read_index(pooling_sweep / job))
    lines = len(read_index(pooling_sweep / "0"))
    assert report_cli(str(pooling_sweep), cwd=pooling_sweep).returncode == 0
    assert len(read_index(pooling_sweep / "0")) == lines  # drawn once, found the next time


@pytest.mark.slow
def test_report_compares_named_run_dirs(pooling_sweep, tmp_path):
    out = tmp_path / "side_by_side"
    done = report_cli(str(pooling_sweep / "0"), str(pooling_sweep / "2"), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    md = (out / "report.md").read_text()
    assert "| pooling |" in next(line for line in md.splitlines() if "| run |" in line)
    results = [json.loads((pooling_sweep / job / "results.json").read_text()) for job in "02"]
    for res in results:
        assert f"{100 * res['test/acc']:.1f} %" in md


@pytest.mark.parametrize("args, says", [
    (["no/such/dir"], "'no/such/dir' is not a directory"),
    (["--experiment", "bogus"], "Valid experiments: abstraction, architectures"),
    (["--experiment", "pooling", "--data", "nowhere"], "Experiment 'pooling' has no sweep on data=nowhere under"),
])
def test_report_bad_input(args, says, tmp_path):
    done = report_cli(*args, cwd=tmp_path)
    assert done.returncode == 2 and says in done.stderr and "Traceback" not in done.stderr
