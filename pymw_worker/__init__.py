"""The worker side of PyMW's long-lived workers: the wire, the task runner and the loops.

Long-lived workers (the generic interface's persistent processes, MPI ranks) take job
records in frames and answer with reply records; fresh processes and BOINC slots take the
files of `pyboinc.contract` instead (docs/worker-contract.md shows both)::

    master engine                          worker process
    -------------                          --------------
    records.Job ──frames──▶ inbox.Inbox ──▶ runner.TaskRunner ──▶ task function
       (Recall) ──frames──▶   (released)       │  or a fresh process on the contract's files
    records.Reply ◀─frames──────────────────────┘

- `frames`: length-prefixed header + raw payload bytes, read with a size cap;
- `records`: the typed job, recall and reply records and their frames;
- `runner`: runs one job, in-process or as a fresh process through the worker contract;
- `inbox`: jobs a worker holds, handed back on a recall; `serve` is the one worker loop;
- `lifeline`: a worker exits when its master dies, whatever it was doing;
- `persistent`: `python -m pymw_worker.persistent`, the generic interface's worker;
- `mpi_ranks`, `mpi_hub`: the MPI rank loop, and the hub that spawns ranks for a master.

Standard library and `pyboinc.contract` only, and never `pymw`: a worker process loads
no part of the master (it may run under another interpreter than the master's).
"""
