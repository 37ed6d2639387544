"""How evoplastic starts a local Ray instance: sized to the CPUs this process may use, token auth explicit.

Ray sizes a local instance by the machine's CPU count, so on a machine where the process is pinned
to fewer cores (``taskset``, a batch scheduler's affinity) or limited by a container's CPU quota it
starts more worker actors than cores, and they slow each other down. :func:`usable_cpus` counts what
this process may really use; :func:`init_kwargs` passes it to ``ray.init(num_cpus=...)``.

Ray 2.59+ turns on token authentication for new local instances when ``RAY_AUTH_MODE`` is unset and
says so on every start ("Token authentication is enabled for this Ray cluster..."). Ray documents
that an explicitly set mode is respected without that notice
(https://docs.ray.io/en/latest/ray-security/token-auth.html), so for a local instance evoplastic sets
``RAY_AUTH_MODE=token`` itself: the same secure default, stated instead of announced. A value the
user set is never changed, and joining a cluster (``address``) leaves the cluster's setting alone.

Ray starts worker processes at nice 15 (its ``worker_niceness``). Beside any normal-priority job
they then get a few per cent of a CPU: a run slows to a crawl and replacement workers take longer
to start than the hung-worker timeout. A local instance therefore gets ``RAY_worker_niceness=0``
(unless the user set it), which keeps the workers at the driver's own priority: under ``nice -n 19
evoplastic train ...`` the workers run at nice 19 too. (Where the kernel groups processes by
session, ``sched_autogroup_enabled``, nice only ranks processes within a session; between
sessions, CPU time is shared per session whatever the nice values.)
This module does not import Ray (only :mod:`evoplastic.runner` and the sweep driver do).
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path
from typing import Any

CGROUP = Path("/sys/fs/cgroup")


def _cgroup_quota(root: Path = CGROUP) -> float | None:
    """CPUs allowed by the cgroup's CPU bandwidth quota (v2 ``cpu.max``, v1 ``cfs_quota_us``), or None."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def usable_cpus(root: Path = CGROUP) -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup quota (rounded up), >= 1."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows: no affinity API
        n = os.cpu_count() or 1
    quota = _cgroup_quota(root)
    if quota is not None:
        n = min(n, math.ceil(quota))
    return max(1, n)


def init_kwargs(address: str | None, workers: int | None = None) -> dict[str, Any]:
    """Extra ``ray.init`` arguments for a new local instance (``address`` None): ``num_cpus``, the
    usable CPUs, or ``workers`` if more were asked for. Joining a cluster: none. For a local
    instance it also sets ``RAY_worker_niceness=0`` unless set (workers at the driver's priority).

    Call it before ``import ray``: it also states ``RAY_AUTH_MODE=token`` (see the module doc) when
    the variable is unset, which Ray reads once, when it is imported. If Ray is already imported the
    variable is left alone, since changing it then would make the driver and the new instance disagree.
    """
    if address is not None:
        return {}
    if "ray" not in sys.modules:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    os.environ.setdefault("RAY_worker_niceness", "0")  # read when the local instance starts
    return {"num_cpus": max(usable_cpus(), workers or 0)}
