"""Config helpers shared by the CLI, the tests, the benchmarks and notebooks: plain-dict conversion, and
composing a run's config in-process exactly as `cnnlab-train` would."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from cnnlab import hydra_setup
from cnnlab.paths import CONF_DIR


def to_plain(cfg: DictConfig | Any) -> Any:
    """A resolved plain dict/list, safe for save_hyperparameters and W&B."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def compose(overrides: Sequence[str] = (), run_dir: str | Path | None = None,
            job_name: str | None = None) -> DictConfig:
    """The config `cnnlab-train OVERRIDES` runs with, Hydra's runtime set up as @hydra.main sets it (run dir,
    job name), so `cnnlab.train.train(cfg)` can run in this process. Without `run_dir`, the run dir is the one
    cnnlab-train would choose (logs/runs/<date>/<time>, or with resume=true the run it would go on with)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    hydra_setup.register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    if run_dir is None:
        run_dir = cfg.hydra.run.dir
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.override_dirname = ",".join(overrides) if job_name is None else job_name
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
