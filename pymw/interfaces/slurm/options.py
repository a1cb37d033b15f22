"""What every Slurm job of a master asks for, in sbatch's own terms (`--slurm-*`)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SlurmOptions:
    """Resources every job asks for, in sbatch's own terms; None leaves Slurm's default."""

    partition: str | None = None
    account: str | None = None
    time: str | None = None
    cpus_per_task: int | None = None
    mem: str | None = None
    extra: tuple[str, ...] = ()

    def sbatch_args(self) -> list[str]:
        named = {
            "--partition": self.partition,
            "--account": self.account,
            "--time": self.time,
            "--cpus-per-task": self.cpus_per_task,
            "--mem": self.mem,
        }
        return [f"{flag}={value}" for flag, value in named.items() if value is not None] + list(
            self.extra
        )

    @classmethod
    def from_options(cls, options: Any) -> SlurmOptions:
        extra = [
            arg for text in getattr(options, "slurm_args", None) or () for arg in shlex.split(text)
        ]
        return cls(
            partition=getattr(options, "slurm_partition", None),
            account=getattr(options, "slurm_account", None),
            time=getattr(options, "slurm_time", None),
            cpus_per_task=getattr(options, "slurm_cpus_per_task", None),
            mem=getattr(options, "slurm_mem", None),
            extra=tuple(extra),
        )
