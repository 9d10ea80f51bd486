"""Model zoo: one file per architecture, each registered by name (`model=<name>`).

Every module in this package is imported here, so adding a model is one .py file (plus its conf/model YAML)."""

import importlib
import pkgutil

from cnnlab.models.base import StagedModel
from cnnlab.models.registry import MODELS, create_model, list_models

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("base", "registry"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["MODELS", "StagedModel", "create_model", "list_models"]
