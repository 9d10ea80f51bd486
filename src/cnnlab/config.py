"""Config helpers shared by the CLI, the tests and the benchmarks: the repo-root resolver, plain-dict
conversion, and composing a run's config in-process exactly as `cnnlab-train` would."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf, open_dict

from cnnlab import CONF_DIR, REPO_ROOT, resume

if not OmegaConf.has_resolver("cnnlab_root"):
    # `${cnnlab_root:}` is the repository, wherever the user launches from (conf/, data/ live there).
    OmegaConf.register_new_resolver("cnnlab_root", lambda: str(REPO_ROOT))
resume.register()  # ${cnnlab_dir:...}: the run or sweep dir, an earlier one with resume=true


def flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """{'model': {'name': 'x'}} → {'model.name': 'x'}: nested settings as the dotted keys users override."""
    if not isinstance(values, dict):
        return {prefix: values}
    out: dict[str, Any] = {}
    for key, value in values.items():
        out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def to_plain(cfg: DictConfig | Any) -> Any:
    """A resolved plain dict/list, safe for save_hyperparameters and W&B."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def compose(overrides: Sequence[str], run_dir: str | Path, job_name: str | None = None) -> DictConfig:
    """The config `cnnlab-train OVERRIDES` runs with, Hydra's runtime set up as @hydra.main sets it (run dir,
    job name), so `cnnlab.train.train(cfg)` can run in this process."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("train", overrides=list(overrides), return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(run_dir)
        cfg.hydra.job.override_dirname = ",".join(overrides) if job_name is None else job_name
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
