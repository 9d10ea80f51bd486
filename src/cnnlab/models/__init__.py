"""Model zoo: one file per architecture, each registered by name (`model=<name>`)."""

from cnnlab.models import lenet5, simple_cnn  # noqa: F401  (importing registers them)
from cnnlab.models.base import StagedModel
from cnnlab.models.registry import MODELS, create_model, list_models

__all__ = ["MODELS", "StagedModel", "create_model", "list_models"]
