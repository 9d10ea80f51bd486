"""Read an offline W&B run back (config, summary, history) through `wandb leet inspect`, W&B's own reader."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError


def find_runs(root: str | Path) -> list[Path]:
    """Every offline W&B run folder under `root` (a run dir, a sweep dir, or logs/)."""
    return sorted(p.parent for p in Path(root).rglob("run-*.wandb"))


def _inspect(run_dir: Path, *flags: str) -> str:
    cmd = [sys.executable, "-m", "wandb", "leet", "inspect", "--json", *flags, str(run_dir)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise CnnlabError(f"could not read the W&B run in {run_dir}: {done.stderr.strip()[:500]}")
    return done.stdout


def read_run(run_dir: str | Path) -> dict[str, Any]:
    """{name, group, state, config, summary, history: [rows], artifacts: [records]} of one offline run folder.
    An artifact record's manifest lists its files with the `local_path` they wait in until `wandb sync`."""
    run_dir = Path(run_dir)
    state = json.loads(_inspect(run_dir, "--summary"))
    history, artifacts, group = [], [], None
    for line in _inspect(run_dir).splitlines():
        record = json.loads(line)
        if record.get("type") == "history":
            history.append(record["history"]["item"])
        elif record.get("type") == "artifact":
            artifacts.append(record["artifact"])
        elif record.get("type") == "run":
            group = record["run"].get("run_group")
    config = {k: v for k, v in state.get("config", {}).items() if k != "_wandb"}
    return {"name": state.get("name"), "id": state.get("run_id"), "group": group, "state": state.get("state"),
            "config": config, "summary": state.get("summary", {}), "history": history,
            "artifacts": artifacts}
