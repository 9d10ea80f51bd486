"""What Hydra needs from cnnlab before it composes a config, registered explicitly by each entry point
(`cnnlab-train`, `cnnlab.compose`, the benchmarks) through `register()`:

- the resolvers the configs use: `${cnnlab_root:}` (this repository), `${cnnlab_dir:...}` (a run's dir, an earlier
  one with resume) and `${cnnlab_sweep_dir:...}` (a sweep's dir: logs/experiments/<question>/... for an
  experiment, logs/multiruns/... otherwise);
- every question's experiment: `experiment=<name>` picks experiments/<name>/config.yaml, found by its folder,
  and with `data=<option>` also experiments/<name>/<option>.yaml when there is one: the experiment's budget on
  that data (conf/train.yaml's `optional experiment_data: ${experiment}_${data}`)."""

from __future__ import annotations

import yaml

from cnnlab.paths import EXPERIMENTS_DIR, REPO_ROOT
from cnnlab.resume import choose_dir, sweep_dir


def experiment_names() -> list[str]:
    """The questions: each folder of experiments/ that holds a config.yaml."""
    return sorted(p.parent.name for p in EXPERIMENTS_DIR.glob("*/config.yaml"))


def experiment_datasets(name: str) -> list[str]:
    """The data options experiments/<name>/ has a budget of its own for (its <option>.yaml files)."""
    return sorted(p.stem for p in (EXPERIMENTS_DIR / name).glob("*.yaml") if p.stem != "config")


def register() -> None:
    """Register the resolvers (once per process) and the experiments (read again on every call, so a folder
    added to experiments/ since the last call is found too)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("cnnlab_root"):
        OmegaConf.register_new_resolver("cnnlab_root", lambda: str(REPO_ROOT))
    # Cached, as ${now:} is: a sweep's jobs (even in other processes) get the directory the sweep chose.
    if not OmegaConf.has_resolver("cnnlab_dir"):
        OmegaConf.register_new_resolver("cnnlab_dir", choose_dir, use_cache=True)
    if not OmegaConf.has_resolver("cnnlab_sweep_dir"):
        OmegaConf.register_new_resolver("cnnlab_sweep_dir", sweep_dir, use_cache=True)
    store = ConfigStore.instance()
    for name in experiment_names():
        # `# @package _global_`, as every experiment config says on its first line
        node = yaml.safe_load((EXPERIMENTS_DIR / name / "config.yaml").read_text()) or {}
        store.store(group="experiment", name=name, node=node, package="_global_", provider="cnnlab")
        for data in experiment_datasets(name):
            node = yaml.safe_load((EXPERIMENTS_DIR / name / f"{data}.yaml").read_text()) or {}
            store.store(group="experiment_data", name=f"{name}_{data}", node=node, package="_global_",
                        provider="cnnlab")
