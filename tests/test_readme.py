"""A newcomer follows only the README: its "Adding a model" and "Adding a question" code, as written there, adds
a model that trains from the command-line config and a question that answers in a report."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
from hydra.core.global_hydra import GlobalHydra

from cnnlab import REPO_ROOT
from helpers import compose_run, copy_shipped_mnist

README = (REPO_ROOT / "README.md").read_text()


def code_block(first_line: str) -> str:
    """The README's python block that starts with `first_line`."""
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    (block,) = [b for b in blocks if b.startswith(first_line)]
    return block


def load_as_module(source: str, path: Path, name: str):
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_readme_stays_a_short_how_to():
    assert len(README.splitlines()) <= 260
    for section in ("## The two commands", "## Choosing what to train", "## Adding a model", "## Adding a question",
                    "## Layout"):
        assert section in README
    assert README.count("**the seed articles**") == 1  # defined once, where the questions are introduced


@pytest.mark.slow
def test_the_readme_s_model_trains_from_its_yaml(tmp_path, monkeypatch):
    from cnnlab.models import MODELS, create_model
    from cnnlab.train import train

    monkeypatch.setattr(MODELS, "_items", dict(MODELS._items))  # the registration is undone after the test
    load_as_module(code_block("# src/cnnlab/models/tiny.py"), tmp_path / "tiny.py", "readme_tiny")
    yaml_line = re.search(r"`conf/model/tiny.yaml` holds (.*?);", README, flags=re.S).group(1)
    keys = dict(re.findall(r"`(\w+): (\w+)`", yaml_line))
    assert keys == {"name": "tiny", "image_size": "null", "depth": "null", "width": "16"}
    (tmp_path / "conf" / "model").mkdir(parents=True)
    (tmp_path / "conf" / "model" / "tiny.yaml").write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    net = create_model("tiny", num_classes=10, in_channels=1, image_size=28)
    assert [name for name, _ in net.named_stages()] == ["block1", "logits"]
    data = copy_shipped_mnist(tmp_path / "data")
    cfg = compose_run("model=tiny", f"hydra.searchpath=[file://{tmp_path / 'conf'}]", f"paths.data_dir={data}",
                      run_dir=tmp_path / "run")
    results = train(cfg)
    GlobalHydra.instance().clear()
    assert results["model"] == "tiny" and results["test/acc"] > 0.5  # 20 steps of a real model on MNIST


def test_the_readme_s_question_answers_in_a_report(tmp_path, monkeypatch):
    from cnnlab.reports.questions import QUESTIONS
    from cnnlab.reports.render import build
    from cnnlab.reports.runs import Run

    monkeypatch.setattr(QUESTIONS, "_items", dict(QUESTIONS._items))
    load_as_module(code_block("# src/cnnlab/reports/questions/batch_size.py"), tmp_path / "q.py", "readme_q")
    runs = [Run(tmp_path / str(i), str(i), [f"data.batch_size={b}", f"seed={s}"],
                {"question": "batch_size", "data": {"batch_size": b}, "seed": s},
                {"test/acc": acc, "test/loss": 0.1, "wall_time_s": 1.0}, None)
            for i, (b, s, acc) in enumerate([(64, 1, 0.90), (64, 2, 0.92), (512, 1, 0.80), (512, 2, 0.82)])]
    report = build(runs)
    assert report.question == "batch_size"
    # two seeds each, 91 % against 81 %: the 95 % intervals (± 12.7) overlap, so no difference is called
    assert report.finding.sentence == ("data.batch_size=64 has the highest test accuracy (91.0 ± 12.7 %); no clear "
                                       "difference from data.batch_size=512 (81.0 ± 12.7 %).")
    assert "test loss" in report.header
