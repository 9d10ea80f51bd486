"""cnnlab: controlled ablations of convolutional networks."""

from pathlib import Path

__version__ = "0.1.0"

#: The repository root (conf/, data/ live here); an editable install keeps the package inside it.
REPO_ROOT = Path(__file__).resolve().parents[2]
CONF_DIR = REPO_ROOT / "conf"
