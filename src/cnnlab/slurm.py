"""cnnlab on a SLURM cluster (`-m hydra/launcher=slurm`, through submitit). Before a sweep is submitted, each job's
request (CPUs, memory, GPUs, nodes) is checked against the nodes of its partition, so a request no node can meet
gets one paragraph instead of jobs pending for ever; and on a cluster without accounting (sacct answers
"accounting storage is disabled", as on many small clusters) submitit's warning on every status poll becomes one
line. Both happen in hydra_plugins.cnnlab_slurm.CheckedSlurmLauncher, the launcher conf/hydra/launcher/slurm.yaml
names: submitit's own SLURM launcher with these checks first."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cnnlab.errors import CnnlabError

SACCT_NOTE = ("submitit: sacct is not available on this cluster (accounting is off), so job states are read from "
              "the jobs' own files (submitit's warning on every status poll is left out)")


@dataclass(frozen=True)
class Node:
    name: str
    partitions: tuple[str, ...]
    cpus: int
    memory_mb: int
    gpus: int


def _gpus(gres: str) -> int:
    """GPUs in a node's GRES string: 'gpu:4', 'gpu:a100:2(S:0-1)', '(null)'."""
    return sum(int(m.group(1)) for m in re.finditer(r"gpu(?::[A-Za-z0-9_-]+)?:(\d+)", gres))


def cluster_nodes() -> tuple[list[Node], str | None]:
    """The cluster's nodes (sinfo), and its default partition."""
    if shutil.which("sinfo") is None:
        raise CnnlabError("hydra/launcher=slurm submits each job with sbatch, and SLURM's commands (sbatch, sinfo) "
                          "are not on this machine's PATH. Valid: run the sweep on the cluster's login node, or "
                          "hydra/launcher=local (the same submitit path on this machine) or hydra/launcher=parallel.")
    done = subprocess.run(["sinfo", "-h", "-N", "-o", "%N|%P|%c|%m|%G"], capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise CnnlabError(f"hydra/launcher=slurm: sinfo could not reach the cluster: "
                          f"{(done.stderr or done.stdout).strip()[:300]}. Valid: a running SLURM cluster "
                          "(SLURM_CONF names its slurm.conf), or hydra/launcher=local.")
    nodes: dict[str, Node] = {}
    default = None
    for line in done.stdout.splitlines():
        name, partition, cpus, memory, gres = (line.split("|") + [""] * 5)[:5]
        if partition.endswith("*"):
            partition = default = partition[:-1]
        old = nodes.get(name)
        partitions = (*old.partitions, partition) if old else (partition,)
        nodes[name] = Node(name, partitions, int(cpus or 0), int(re.sub(r"\D", "", memory) or 0), _gpus(gres))
    return list(nodes.values()), default


def check_request(launcher: Mapping[str, Any], nodes: list[Node], default: str | None) -> None:
    """Refuse a per-job request that no node of the job's partition can meet, naming what the nodes have."""
    partition = launcher.get("partition") or default
    candidates = [n for n in nodes if partition is None or partition in n.partitions]
    if not candidates:
        names = sorted({p for n in nodes for p in n.partitions})
        raise CnnlabError(f"hydra.launcher.partition={partition} is not a partition of this cluster. Valid: one of "
                          f"{', '.join(names)}, or null for the default ({default}).")
    tasks = int(launcher.get("tasks_per_node") or 1)
    cpus = int(launcher.get("cpus_per_task") or 1) * tasks
    memory_mb = int(float(launcher["mem_gb"]) * 1024) if launcher.get("mem_gb") else 0
    gpus = int(launcher.get("gpus_per_node") or 0)
    fits = [n for n in candidates if n.cpus >= cpus and n.memory_mb >= memory_mb and n.gpus >= gpus]
    wanted_nodes = int(launcher.get("nodes") or 1)
    if len(fits) >= wanted_nodes:
        return
    best_cpus = max(n.cpus for n in candidates)
    best_memory = max(n.memory_mb for n in candidates)
    best_gpus = max(n.gpus for n in candidates)
    asks = [f"{cpus} CPUs (cpus_per_task={launcher.get('cpus_per_task')} × tasks_per_node={tasks})"]
    if memory_mb:
        asks.append(f"{memory_mb / 1024:g} GB (mem_gb)")
    if gpus:
        asks.append(f"{gpus} GPU(s) (gpus_per_node)")
    fixes = []
    if cpus > best_cpus:
        fixes.append(f"hydra.launcher.cpus_per_task={max(best_cpus // tasks, 1)}")
    if memory_mb > best_memory:
        fixes.append(f"hydra.launcher.mem_gb={best_memory // 1024}")
    if gpus > best_gpus:
        fixes.append(f"hydra.launcher.gpus_per_node={best_gpus}")
    if 0 < len(fits) < wanted_nodes:
        fixes.append(f"hydra.launcher.nodes={max(len(fits), 1)}")
    raise CnnlabError(
        f"hydra/launcher=slurm asks for {wanted_nodes} node(s) with {', '.join(asks)} per job, and "
        f"{len(fits)} of the {len(candidates)} node(s) of partition '{partition}' can give that (the largest has "
        f"{best_cpus} CPUs, {best_memory / 1024:.0f} GB and {best_gpus} GPU(s)): the jobs would wait in the queue "
        f"for ever, so nothing was submitted. Valid: {' '.join(fixes) or 'a smaller request'}, or another "
        "partition (hydra.launcher.partition=...).")


class _OneSacctLine(logging.Filter):
    """Drops submitit's 'Bypassing sacct error' warnings (one per status poll, each shown by several handlers),
    saying once, in one line, what they mean."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if "Bypassing sacct error" not in record.getMessage():
            return True
        if not self.said:
            self.said = True
            print(SACCT_NOTE, file=sys.stderr, flush=True)
        return False


def quiet_sacct() -> None:
    """One line instead of a warning on every status poll, and sacct's own stderr kept off the terminal."""
    from cnnlab.lightning_compat import silence_sacct_stderr

    log = logging.getLogger("submitit")
    if not any(isinstance(f, _OneSacctLine) for f in log.filters):
        log.addFilter(_OneSacctLine())
    silence_sacct_stderr()
