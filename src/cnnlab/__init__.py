"""cnnlab: controlled ablations of convolutional networks.

The Python API (src/cnnlab/api.py) is reachable from here without importing torch or Lightning up front:
`cnnlab.list_models`, `cnnlab.create_model`, `cnnlab.compose`, `cnnlab.run`, `cnnlab.load_run`."""

from cnnlab.paths import CONF_DIR, EXPERIMENTS_DIR, REPO_ROOT

__version__ = "0.1.0"
__all__ = ["CONF_DIR", "EXPERIMENTS_DIR", "REPO_ROOT", "__version__"]

_API = ("TrainedRun", "compose", "create_model", "list_models", "load_run", "run")


def __getattr__(name: str):
    """`cnnlab.load_run` and the rest of the API, imported on first use (PEP 562)."""
    if name in _API:
        from cnnlab import api

        return getattr(api, name)
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
