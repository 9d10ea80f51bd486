"""DDP under Hydra (`trainer=ddp`, `trainer=ddp_cpu`), for a single run and inside `-m`.

Lightning's `strategy=ddp` starts ranks 1.. by running the command line again, and it leaves the process group
and the variables that say "the ranks exist already" (LOCAL_RANK, MASTER_PORT, ...) behind in the process that
started them. Under `-m` every rank would start a sweep of its own, and the next job would reuse the last job's
ranks. Here each rank runs this one job as a single run in the job's own dir, and every job cleans up after
itself, so each job of a sweep starts its own ranks (one run dir, one W&B run per job). On SLURM or torchrun
the ranks are started from outside and none of this applies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from hydra.core.hydra_config import HydraConfig

from cnnlab.lightning_compat import launched_ranks, replace_ddp_rank_command

_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# Hydra overrides that make sense for the sweep only, not for one rank of one of its jobs:
_SWEEP_ONLY = ("hydra.mode=", "hydra.sweep", "hydra/sweeper", "hydra.sweeper", "hydra/launcher", "hydra.launcher")


def rank_command(local_rank: int) -> tuple[list[str], str]:
    """The command that runs DDP rank `local_rank` of this job: this job's overrides as a single run in its run
    dir, without writing .hydra/ again. It replaces Lightning's own rank command (replace_ddp_rank_command),
    which re-runs the whole command line (-m and all) and, under submitit or joblib, the wrong program."""
    hc = HydraConfig.get()
    command = [sys.executable, "-m", "cnnlab.train", "--config-name", hc.job.config_name]
    for source in hc.runtime.config_sources:
        if source.provider == "command-line":  # --config-dir
            command += ["--config-dir", source.path]
    command += [o for o in hc.overrides.hydra if not o.startswith(_SWEEP_ONLY)]
    command += [*hc.overrides.task, f'hydra.run.dir="{hc.runtime.output_dir}"',
                f"hydra.job.name=train_ddp_process_{local_rank}", "hydra.output_subdir=null"]
    return command, hc.runtime.cwd


class DDPJob:
    """`with DDPJob() as job: job.trainer = Trainer(...)`. On the way out, ends the ranks this process started
    (waits for them after a good run, kills them after a failed one), closes the process group, and restores
    the environment, so the next job of a sweep starts afresh."""

    def __init__(self) -> None:
        self.trainer: Any = None

    def __enter__(self) -> DDPJob:
        replace_ddp_rank_command(rank_command)
        self.env = {key: os.environ.get(key) for key in _ENV}
        return self

    def __exit__(self, exc_type: type | None, *_: Any) -> None:
        import torch.distributed as dist

        ranks = launched_ranks(self.trainer)
        children = list(ranks)
        ranks.clear()  # Lightning's watcher thread shares this list: empty, it stops without killing this process
        for proc in children:
            if exc_type is None:
                try:
                    proc.wait(timeout=120)
                    continue
                except subprocess.TimeoutExpired:
                    pass
            proc.kill()
            proc.wait()
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for key, value in self.env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
