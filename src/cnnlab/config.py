"""Config helpers shared by the CLI and the tests: the repo-root resolver and plain-dict conversion."""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from cnnlab import REPO_ROOT

if not OmegaConf.has_resolver("cnnlab_root"):
    # `${cnnlab_root:}` is the repository, wherever the user launches from (conf/, data/ live there).
    OmegaConf.register_new_resolver("cnnlab_root", lambda: str(REPO_ROOT))


def to_plain(cfg: DictConfig | Any) -> Any:
    """A resolved plain dict/list, safe for save_hyperparameters and W&B."""
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg
