"""cnnlab on a real SLURM cluster: the single-node cluster tools/slurm-local.sh starts on this machine (.ci/run
starts it; so does the first test here, when it can). A sweep on hydra/launcher=slurm runs as one job array and
ends with the same sweep table and run dirs as the basic launcher; a request no node can meet is refused before
anything is submitted; submitit's sacct warnings (no accounting here) are one line; a job preempted (SIGTERM) or
requeued goes back in the queue and ends with exactly the numbers and history of an uninterrupted run; and
trainer=ddp_cpu with 2 tasks per node runs its ranks as SLURM's tasks."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from cnnlab import REPO_ROOT
from cnnlab.loggers.wandb_offline import find_runs, read_run
from cnnlab.slurm import SACCT_NOTE
from helpers import CLI, RESUMABLE_RUN, final_metrics, logged_history, user_env

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


def slurm(env: dict[str, str], *command: str, cwd: Path | None = None) -> str:
    done = subprocess.run(list(command), env=env, cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def uninterrupted_job(slurm_env, tmp_path_factory) -> Path:
    """The resumable run as job 0 of a sweep on the basic launcher, never stopped."""
    cwd = tmp_path_factory.mktemp("uninterrupted")
    done = subprocess.run([CLI, "-m", *RESUMABLE_RUN], cwd=cwd, env=slurm_env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep_dir(cwd) / "0"


def wait_for(what: str, check, timeout: float = 180):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if found := check():
            return found
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def stop_and_start_again(env: dict[str, str], stop: list[str], job_id: str) -> None:
    """At a random moment, what a preempting scheduler does (or an admin's requeue); then, once the job is back in
    the queue, let it start: SLURM holds a requeued job two minutes before it may start again, the test moves that
    time to now."""
    time.sleep(random.uniform(0.0, 1.0))
    slurm(env, *stop, job_id)
    wait_for("the job back in the queue",
             lambda: slurm(env, "squeue", "-h", "-j", job_id, "-o", "%T").strip() == "PENDING", timeout=120)
    # slurmd revokes the stopped start's credential with a time in whole seconds, and refuses a start whose
    # credential falls in the same second ("Job credential revoked": the requeued job then FAILS, CI 2026-12-04)
    time.sleep(2.0)
    slurm(env, "scontrol", "update", f"JobId={job_id}", "StartTime=now")


@pytest.mark.parametrize("stop", [["scancel", "--signal=TERM"], ["scontrol", "requeue"]],
                         ids=["preempted-by-sigterm", "scontrol-requeue"])
def test_a_stopped_slurm_job_is_requeued_and_resumes_to_the_uninterrupted_numbers_and_history(
        slurm_env, tmp_path, uninterrupted_job, stop):
    sweep = subprocess.Popen([CLI, "-m", *SMALL, *RESUMABLE_RUN], cwd=tmp_path, env=slurm_env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    checkpoint = wait_for("the job's first resume checkpoint",
                          lambda: next(iter(tmp_path.glob("logs/multiruns/*/*/0/checkpoints/resume.ckpt")), None))
    job_dir = checkpoint.parent.parent
    (job_id,) = [p.name for p in (job_dir.parent / ".submitit").iterdir() if p.is_dir()]
    stop_and_start_again(slurm_env, stop, job_id)
    stdout, stderr = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, stderr[-3000:]
    assert "cnnlab sweep finished" in stdout and stdout.count("│ ok") == 1

    assert "Restarts=1" in slurm(slurm_env, "scontrol", "show", "job", job_id)
    (log,) = (job_dir.parent / ".submitit").glob("*/*_0_log.err")
    said = " ".join(log.read_text().split())
    stopped = re.search(r"cnnlab: stopped by SIGTERM at step (\d+) and (requeued SLURM job|SLURM is requeueing job) "
                        + job_id, said)
    assert stopped, said[-3000:]
    assert 0 < int(stopped.group(1)) < 120  # in the middle of its 3 × 40 steps
    # the same run dir and W&B run: one id over both starts; the second went on from the first's checkpoint
    result = json.loads((job_dir / "results.json").read_text())
    assert result["run_dir"] == str(job_dir) and not (job_dir / "error.txt").exists()
    segments = find_runs(job_dir)
    assert len(segments) == 2 and len({p.name.rsplit("-", 1)[1] for p in segments}) == 1
    assert read_run(segments[-1])["state"] == "finished"
    assert f"resuming {job_dir} from" in " ".join(next((job_dir.parent / ".submitit").glob("*/*_0_log.out"))
                                                  .read_text().split())
    uninterrupted = json.loads((uninterrupted_job / "results.json").read_text())
    assert final_metrics(result) == final_metrics(uninterrupted), stopped.group(1)
    assert logged_history(job_dir) == logged_history(uninterrupted_job), stopped.group(1)


SBATCH_SCRIPT = """#!/bin/bash
#SBATCH --requeue --cpus-per-task=1 --mem=2G --output=job-%j.out --open-mode=append
srun {cli} {args}
"""


def test_a_run_in_ones_own_sbatch_script_is_requeued_and_resumes_in_its_run_dir(slurm_env, tmp_path,
                                                                                 uninterrupted_job):
    args = " ".join(f"'{a}'" for a in RESUMABLE_RUN)
    (tmp_path / "run.sh").write_text(SBATCH_SCRIPT.format(cli=CLI, args=args))
    job_id = slurm(slurm_env, "sbatch", "--parsable", "run.sh", cwd=tmp_path).strip()
    checkpoint = wait_for("the run's first resume checkpoint",
                          lambda: next(iter(tmp_path.glob("logs/runs/*/*/checkpoints/resume.ckpt")), None))
    stop_and_start_again(slurm_env, ["scancel", "--signal=TERM"], job_id)
    wait_for("the job to end", lambda: not slurm(slurm_env, "squeue", "-h", "-j", job_id).strip(), timeout=600)

    run_dir = checkpoint.parent.parent
    assert [p.name for p in run_dir.parent.parent.glob("*/*")] == [run_dir.name]  # no second run dir
    said = " ".join((tmp_path / f"job-{job_id}.out").read_text().split())
    assert f"requeued SLURM job {job_id}" in said and f"resuming {run_dir} from" in said
    result = json.loads((run_dir / "results.json").read_text())
    assert len({p.name.rsplit("-", 1)[1] for p in find_runs(run_dir)}) == 1
    uninterrupted = json.loads((uninterrupted_job / "results.json").read_text())
    assert final_metrics(result) == final_metrics(uninterrupted)
    assert logged_history(run_dir) == logged_history(uninterrupted_job)


def test_ddp_cpu_with_two_slurm_tasks_runs_its_ranks_as_the_tasks(slurm_env, tmp_path):
    ddp = ["trainer=ddp_cpu", "seed=3", "debug=test", "callbacks=base"]  # W&B offline, as by default
    for cwd in ("slurm", "spawned"):
        (tmp_path / cwd).mkdir()
    done = subprocess.run([CLI, "-m", *SMALL, "hydra.launcher.tasks_per_node=2", *ddp], cwd=tmp_path / "slurm",
                          env=slurm_env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    spawned = subprocess.run([CLI, *ddp], cwd=tmp_path / "spawned", env=slurm_env, capture_output=True, text=True,
                             timeout=600)
    assert spawned.returncode == 0, spawned.stderr[-3000:]

    job_dir = sweep_dir(tmp_path / "slurm") / "0"
    (reference_dir,) = list((tmp_path / "spawned" / "logs" / "runs").glob("*/*"))
    # SLURM started both ranks (tasks 0 and 1 of one job), Lightning wired them through SLURM's variables, and
    # cnnlab started none of its own (no rank command ran, no log of one)
    logs = {p.name.split("_log")[0].rsplit("_", 1)[1]: p.read_text()
            for p in (job_dir.parent / ".submitit").glob("*/*_log.err")}
    assert sorted(logs) == ["0", "1"]
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in logs["0"] and "GLOBAL_RANK: 1, MEMBER: 2/2" in logs["1"]
    assert not list(job_dir.glob("train_ddp_process_*.log"))
    assert (reference_dir / "train_ddp_process_1.log").exists()  # the self-started run: cnnlab's rank 1
    # one run dir, one W&B run, the numbers of the same 2-rank run started by cnnlab itself
    (run,) = [read_run(p) for p in find_runs(tmp_path / "slurm")]
    ours, theirs = (json.loads((d / "results.json").read_text()) for d in (job_dir, reference_dir))
    assert run["state"] == "finished" and run["summary"]["test/acc"] == pytest.approx(ours["test/acc"])
    assert sum(map(sum, ours["confusion_matrix"])) == 4000  # both ranks' test batches
    assert ours["confusion_matrix"] == theirs["confusion_matrix"]
    assert ours["test/acc"] == pytest.approx(theirs["test/acc"], abs=1e-6)
    assert ours["test/loss"] == pytest.approx(theirs["test/loss"], abs=1e-5)
    assert "cnnlab sweep finished" in done.stdout and done.stdout.count("│ ok") == 1


def test_a_cancelled_slurm_job_is_not_requeued_and_ends_as_stopped(slurm_env, tmp_path):
    run = [a if not a.startswith("logger=") else "logger=csv" for a in RESUMABLE_RUN]
    sweep = subprocess.Popen([CLI, "-m", *SMALL, *run], cwd=tmp_path, env=slurm_env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    checkpoint = wait_for("the job's first resume checkpoint",
                          lambda: next(iter(tmp_path.glob("logs/multiruns/*/*/0/checkpoints/resume.ckpt")), None))
    job_dir = checkpoint.parent.parent
    (job_id,) = [p.name for p in (job_dir.parent / ".submitit").iterdir() if p.is_dir()]
    slurm(slurm_env, "scancel", job_id)  # the user's own cancel: the job must not come back
    stdout, stderr = sweep.communicate(timeout=300)
    assert sweep.returncode == 1, stderr[-3000:]
    assert "Restarts=0" in slurm(slurm_env, "scontrol", "show", "job", job_id)
    assert (job_dir / "error.txt").read_text().startswith("Stopped by SIGTERM at step")
    assert "resume=true" in (job_dir / "error.txt").read_text() and not (job_dir / "results.json").exists()
    assert "1 of 1 job(s) failed: 0" in " ".join(stderr.split())
