"""cnnlab's SLURM launcher: submitit's (hydra-submitit-launcher), which first checks each job's request against the
cluster's nodes and quiets submitit's sacct warnings (cnnlab.slurm). Hydra takes launchers only from the
hydra_plugins namespace, so it is defined here; conf/hydra/launcher/slurm.yaml names it."""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import SlurmLauncher


class CheckedSlurmLauncher(SlurmLauncher):
    def launch(self, job_overrides: Any, initial_job_idx: int) -> Any:
        from cnnlab.slurm import check_request, cluster_nodes, quiet_sacct

        nodes, default = cluster_nodes()
        check_request(self.params, nodes, default)
        quiet_sacct()
        return super().launch(job_overrides, initial_job_idx)
