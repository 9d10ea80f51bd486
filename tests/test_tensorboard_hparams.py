"""TensorBoard's HParams tab compares the runs of a sweep on their real numbers: each run's config beside its
test accuracy and probe numbers, read back with TensorBoard's own event reader and plugin protos."""

from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from helpers import run_cli


def hparams_of(run_tensorboard_dir) -> tuple[dict, list[str], EventAccumulator]:
    """(the run's hyperparameters, the metric tags its HParams experiment names, the event reader)."""
    events = EventAccumulator(str(run_tensorboard_dir)).Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    values = {k: v.number_value if v.HasField("number_value") else v.string_value for k, v in start.hparams.items()}
    return values, [m.name.tag for m in experiment.metric_infos], events


@pytest.mark.slow
def test_a_four_job_sweep_shows_test_accuracy_per_run_in_hparams(tmp_path):
    done = run_cli("-m", "debug=test", "logger=tensorboard", "callbacks=[base,weight_sharing]", "seed=1,2",
                   "pooling=max,avg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    runs = sorted(p.parent for p in tmp_path.glob("logs/multiruns/*/*/*/results.json"))
    assert len(runs) == 4
    seen = set()
    for run in runs:
        results = json.loads((run / "results.json").read_text())
        values, metrics, events = hparams_of(run / "tensorboard")
        assert "hp_metric" not in metrics and "hp_metric" not in events.Tags()["scalars"]  # Lightning's placeholder
        assert {"test/acc", "test/loss", "val/best", "weight_sharing/params"} <= set(metrics)
        assert not any("acc_class" in m or m.startswith("probe_seconds/") for m in metrics)
        assert events.Scalars("test/acc")[-1].value == pytest.approx(results["test/acc"], rel=1e-6)
        assert values["seed"] in (1, 2) and values["pooling/name"] in ("max", "avg")
        seen.add((values["seed"], values["pooling/name"]))
    assert seen == {(1, "max"), (1, "avg"), (2, "max"), (2, "avg")}
