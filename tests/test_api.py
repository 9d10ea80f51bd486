"""The Python API a notebook uses (cnnlab.list_models, create_model, compose, run, load_run), and adding a
question as one folder plus one module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from hydra.core.global_hydra import GlobalHydra

import cnnlab
from cnnlab.errors import CnnlabError, UnknownNameError
from helpers import copy_shipped_mnist

TINY = ["debug=test", "logger=none", "callbacks=base"]


def test_import_cnnlab_is_light_and_names_the_api():
    code = ("import sys, cnnlab; print(sorted(m for m in ('torch', 'lightning', 'hydra') if m in sys.modules)); "
            "print(callable(cnnlab.load_run), callable(cnnlab.run), callable(cnnlab.compose))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines() == ["[]", "True True True"]
    assert {"load_run", "run", "compose", "create_model", "list_models"} <= set(dir(cnnlab))
    with pytest.raises(AttributeError, match="no attribute 'trian'"):
        cnnlab.trian  # noqa: B018 — a typo is an AttributeError, not a silent None


def test_list_models_takes_timm_style_wildcards():
    assert cnnlab.list_models("res*") == ["resnet18", "resnet20"]
    assert cnnlab.list_models("vgg?1") == ["vgg11"]
    assert cnnlab.list_models() == sorted(cnnlab.list_models()) and "lenet5" in cnnlab.list_models()
    assert cnnlab.list_models("nothing*") == []


def test_create_model_builds_any_registered_model_and_refuses_unknown_names():
    net = cnnlab.create_model("simple_cnn", num_classes=10, in_channels=3, image_size=32, width=8)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(UnknownNameError, match="Did you mean 'lenet5'"):
        cnnlab.create_model("lenet", num_classes=10, in_channels=1, image_size=32)


def test_compose_gives_the_config_cnnlab_train_runs_with(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CNNLAB_LOG_DIR", raising=False)
    cfg = cnnlab.compose(["model=simple_cnn", "pooling=avg", "experiment=pooling"])
    assert (cfg.model.name, cfg.pooling.name, cfg.question) == ("simple_cnn", "avg", "pooling")
    from hydra.core.hydra_config import HydraConfig

    run_dir = Path(HydraConfig.get().runtime.output_dir)  # the dir cnnlab-train would choose: logs/runs/<date>/<time>
    assert run_dir.parts[:2] == ("logs", "runs") and len(run_dir.parts) == 4
    GlobalHydra.instance().clear()


@pytest.mark.slow
def test_run_trains_as_the_cli_does_and_load_run_reads_it_back(tmp_path):
    data = copy_shipped_mnist(tmp_path / "data")
    results = cnnlab.run(["model=simple_cnn", "model.width=8", *TINY, f"paths.data_dir={data}"],
                         run_dir=tmp_path / "run")
    GlobalHydra.instance().clear()
    assert json.loads((tmp_path / "run" / "results.json").read_text())["test/acc"] == results["test/acc"]
    run = cnnlab.load_run(tmp_path / "run")
    assert run.results == json.loads((tmp_path / "run" / "results.json").read_text())
    assert run.config["model"]["name"] == "simple_cnn" and run.config["model"]["width"] == 8
    assert run.checkpoint.name.startswith("best-") and not run.net.training
    # the network is the trained one: its accuracy on the first test images matches what the run measured
    from cnnlab.data import DATASETS, load_split

    test_set = load_split(DATASETS.get("mnist"), data, train=False, transform=None, download=False)
    x = (test_set.data[:2000].unsqueeze(1).float() / 255 - 0.1307) / 0.3081
    with torch.no_grad():
        acc = (run.net(x).argmax(1) == test_set.targets[:2000]).float().mean().item()
    assert abs(acc - results["test/acc"]) < 0.05, (acc, results["test/acc"])  # test/acc: the first 2,000 (debug)


def test_load_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(CnnlabError, match=r"load_run\('.*nothing'\): not a cnnlab run dir.*logs/runs/<date>/<time>"):
        cnnlab.load_run(tmp_path / "nothing")


def test_a_new_question_is_one_folder_and_one_module(tmp_path, monkeypatch):
    """A newcomer's question: experiments/<name>/ with config.yaml and README.md, and one registered module.
    `experiment=<name>` finds it by its folder, its sweep goes to logs/experiments/<name>/<data>/, and the report
    answers with the module's sentence."""
    from cnnlab import hydra_setup
    from cnnlab.reports import questions
    from cnnlab.reports.render import build
    from cnnlab.reports.runs import Run

    experiments = tmp_path / "experiments"
    (experiments / "width").mkdir(parents=True)
    (experiments / "width" / "config.yaml").write_text(textwrap.dedent("""\
        # @package _global_
        defaults:
          - override /model: simple_cnn
        question: width
        hydra:
          mode: MULTIRUN
          sweeper:
            params:
              model.width: 8,16
              seed: 1,2
        """))
    monkeypatch.setattr(hydra_setup, "EXPERIMENTS_DIR", experiments)
    module = tmp_path / "width_question.py"
    module.write_text(textwrap.dedent("""\
        from cnnlab.reports.questions import Finding, register_question
        from cnnlab.reports.questions.base import panels


        @register_question("width")
        def width(runs, keys):
            fig, (ax,) = panels(1)
            return Finding(f"{len(runs)} runs of the width question.", fig, "One bar per width.")
        """))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(questions.QUESTIONS, "_items", dict(questions.QUESTIONS._items))  # undone after the test
    __import__("width_question")
    hydra_setup.register()
    from hydra import compose, initialize_config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(cnnlab.CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=["experiment=width", f"paths.log_dir={tmp_path / 'logs'}"],
                      return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.question == "width" and cfg.model.name == "simple_cnn"
    assert Path(cfg.hydra.sweep.dir).parent == tmp_path / "logs" / "experiments" / "width" / "mnist"  # per data
    run = Run(tmp_path, "0", ["model.width=8"], {"question": "width", "model": {"width": 8}},
              {"test/acc": 0.9, "wall_time_s": 1.0}, None)
    report = build([run])
    assert report.question == "width" and report.finding.sentence == "1 runs of the width question."
    sys.modules.pop("width_question", None)
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().repo["experiment"].pop("width.yaml")
