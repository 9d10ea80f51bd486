"""A SLURM batch job stopped by SIGTERM goes back in the queue, and goes on where it stopped when it starts again.

SIGTERM reaches a running job when a scheduler preempts it, when someone runs `scontrol requeue` (SLURM then
requeues the job itself) or `scancel --signal=TERM` (the job stays RUNNING), and when it is cancelled. The run
saves its resume checkpoint either way (callbacks/resume.py); then `after_sigterm` asks SLURM what the job has
become. Still RUNNING: this process requeues it. Already being requeued (its restart count went up): nothing to
do. Cancelled, not a batch job, or not requeueable: the run ends as stopped, as on any machine.

A requeued job runs the same command again (submitit's job file, or the sbatch script) with SLURM_RESTART_COUNT
set; `requeued()` tells cnnlab to resume then, from the run dir's checkpoint and W&B run, as resume=true would.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass


def restarts() -> int:
    """How often SLURM has requeued this job so far (0 outside SLURM and on a job's first start)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT") or 0) if os.environ.get("SLURM_JOB_ID") else 0
    except ValueError:
        return 0


def requeued() -> bool:
    """This process belongs to a SLURM job that was stopped and requeued: go on where it stopped."""
    return restarts() > 0


@dataclass(frozen=True)
class Requeue:
    """What became of a SIGTERM-stopped SLURM job: `requeued` (it will start again), and a line saying so or why not."""

    requeued: bool
    line: str


def _job_fields(job_id: str) -> dict[str, str]:
    done = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        return {}
    return dict(re.findall(r"(\w+)=(\S*)", done.stdout))


def after_sigterm() -> Requeue:
    """Put this SLURM job back in the queue when a scheduler (not a cancel) stopped it; see the module doc."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return Requeue(False, "not a SLURM job")
    try:
        fields = _job_fields(job_id)
    except (OSError, subprocess.SubprocessError) as err:
        return Requeue(False, f"scontrol could not be asked about job {job_id} ({err})")
    state = fields.get("JobState", "")
    if fields.get("BatchFlag") != "1" or fields.get("Requeue") != "1":
        return Requeue(False, f"SLURM job {job_id} is not a requeueable batch job (sbatch --requeue)")
    if int(fields.get("Restarts") or 0) > restarts():
        return Requeue(True, f"SLURM is requeueing job {job_id}")
    if state != "RUNNING":
        return Requeue(False, f"SLURM job {job_id} was cancelled ({state})")
    if os.environ.get("SLURM_PROCID", "0") != "0":
        return Requeue(True, f"rank 0 requeues SLURM job {job_id}")
    try:
        done = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        return Requeue(False, f"scontrol requeue {job_id} failed ({err})")
    if done.returncode != 0:
        return Requeue(False, f"scontrol requeue {job_id} failed: {(done.stderr or done.stdout).strip()[:200]}")
    return Requeue(True, f"requeued SLURM job {job_id}")
