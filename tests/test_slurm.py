"""cnnlab on a real SLURM cluster: the single-node cluster tools/slurm-local.sh starts on this machine (.ci/run
starts it; so does the first test here, when it can). A sweep on hydra/launcher=slurm runs as one job array and
ends with the same sweep table and run dirs as the basic launcher; a request no node can meet is refused before
anything is submitted; submitit's sacct warnings (no accounting here) are one line."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from cnnlab import REPO_ROOT
from cnnlab.slurm import SACCT_NOTE
from helpers import CLI, user_env

pytestmark = pytest.mark.slow
SLURM_DIR = Path(os.environ.get("CNNLAB_SLURM_DIR", "/tmp/cnnlab-slurm"))
# what one tiny job needs here: the launcher's defaults (8 CPUs, 32 GB, a GPU) are for a real cluster's nodes
SMALL = ["hydra/launcher=slurm", "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
         "hydra.launcher.gpus_per_node=0", "hydra.launcher.timeout_min=10"]
JOB = ["debug=test", "logger=none", "callbacks=base"]


@pytest.fixture(scope="module")
def slurm_env() -> dict[str, str]:
    """The environment of a user on the cluster: SLURM_CONF names the local cluster's config; the cluster is
    started when it is not running (root, packages installable), else the tests are skipped, saying why."""
    started = subprocess.run([str(REPO_ROOT / "tools" / "slurm-local.sh"), "start"], capture_output=True, text=True,
                             timeout=600)
    if started.returncode != 0:
        pytest.skip(f"no local SLURM cluster (tools/slurm-local.sh start failed: "
                    f"{(started.stderr or started.stdout).strip()[-400:]})")
    return {**user_env(), "SLURM_CONF": str(SLURM_DIR / "slurm.conf")}


def sweep_dir(cwd: Path) -> Path:
    (found,) = list((cwd / "logs" / "multiruns").glob("*/*"))
    return found


def test_a_two_job_sweep_runs_as_a_slurm_array_like_the_basic_launcher(slurm_env, tmp_path):
    slurm = tmp_path / "slurm"
    basic = tmp_path / "basic"
    for cwd in (slurm, basic):
        cwd.mkdir()
    done = subprocess.run([CLI, "-m", *SMALL, *JOB, "pooling=max,avg"], cwd=slurm, env=slurm_env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = subprocess.run([CLI, "-m", *JOB, "pooling=max,avg"], cwd=basic, env=slurm_env,
                               capture_output=True, text=True, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]

    ours, theirs = sweep_dir(slurm), sweep_dir(basic)
    # the same run dirs: jobs 0 and 1, each a finished run of its overrides, and the sweep's own record
    for sweep in (ours, theirs):
        assert sorted(p.name for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")) == ["0", "1"]
        assert (sweep / "sweep.yaml").is_file()
    for job in ("0", "1"):
        mine, basics = (yaml.safe_load((s / job / ".hydra" / "overrides.yaml").read_text()) for s in (ours, theirs))
        assert [o for o in mine if not o.startswith("hydra")] == basics
        assert (ours / job / "results.json").is_file() and (ours / job / "checkpoints" / "last.ckpt").is_file()
    # the same sweep table, one row per job
    for output in (done.stdout, reference.stdout):
        assert "cnnlab sweep finished" in output and output.count("│ ok") == 2
    # submitted as one array: submitit keeps each task's files under <array id>_<task>
    tasks = sorted(p.name for p in (ours / ".submitit").iterdir() if p.is_dir() and "_" in p.name)
    assert len(tasks) == 2 and {t.rsplit("_", 1)[0] for t in tasks} == {tasks[0].rsplit("_", 1)[0]}
    assert [t.rsplit("_", 1)[1] for t in tasks] == ["0", "1"]
    # no accounting on this cluster: one line about sacct, not a warning per status poll
    assert "Bypassing sacct error" not in done.stderr + done.stdout
    assert "accounting storage is disabled" not in done.stderr
    assert (done.stderr + done.stdout).count(SACCT_NOTE) <= 1


def test_a_request_no_node_can_meet_is_refused_before_anything_is_submitted(slurm_env, tmp_path):
    done = subprocess.run([CLI, "-m", "hydra/launcher=slurm", *JOB, "pooling=max,avg"], cwd=tmp_path,
                          env=slurm_env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    text = " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr and text.startswith("cnnlab: error:")
    assert "8 CPUs" in text and "1 GPU(s)" in text and "nothing was submitted" in text
    assert "hydra.launcher.gpus_per_node=0" in text and "hydra.launcher.cpus_per_task=" in text
    assert not list(tmp_path.rglob(".submitit"))  # no sbatch ran
    queue = subprocess.run(["squeue", "-h"], env=slurm_env, capture_output=True, text=True, timeout=60)
    assert queue.returncode == 0 and queue.stdout.strip() == ""

    big = subprocess.run([CLI, "-m", *SMALL, "hydra.launcher.mem_gb=100000", *JOB, "pooling=max"], cwd=tmp_path,
                         env=slurm_env, capture_output=True, text=True, timeout=300)
    assert big.returncode == 2 and "hydra.launcher.mem_gb=" in " ".join(big.stderr.split())
