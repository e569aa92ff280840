"""cgroups for corral-runtime: v1, v2 and hybrid hosts behind one Manager.

    detect.py   which hierarchies the host has and where this process sits in them
    manager.py  Manager (create/add/update/pids/freeze/oom/stats/destroy/mount_sources),
                open_manager(cgroupsPath, id), reopen(paths) for later verbs
    v1.py       cgroup v1 controller files
    v2.py       cgroup v2 (unified) files and runc's v1->v2 value conversions
    devices.py  OCI device rules normalised, with runc's default allow-list
    ebpf.py     v2 device rules as a BPF_PROG_TYPE_CGROUP_DEVICE program
    validate.py check(resources): JSON types of linux.resources, before touching anything
    common.py   CgroupError and file access that names the file and value
    warmup.py   starts the kernel's wait for a cgroup migration early (create, run, exec)

The names below are imported on first use: `warmup` is imported first thing by the verbs that
migrate a process, before the Manager's modules are needed.
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from corral.runtime.cgroups.common import CgroupError
    from corral.runtime.cgroups.manager import Manager, open_manager, reopen
    from corral.runtime.cgroups.validate import check

_HOMES = {"CgroupError": "common", "Manager": "manager", "open_manager": "manager",
          "reopen": "manager", "check": "validate"}

__all__ = ["CgroupError", "Manager", "check", "open_manager", "reopen"]


def __getattr__(name: str) -> object:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = __import__(f"{__name__}.{home}", fromlist=[name])
    return getattr(module, name)
