"""Where cnnlab's own files are: the repository (an editable install keeps the package inside it), its conf/
and its experiments/. A leaf: imports nothing of cnnlab."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"
EXPERIMENTS_DIR = REPO_ROOT / "experiments"
