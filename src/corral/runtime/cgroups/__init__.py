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
"""

from corral.runtime.cgroups.common import CgroupError
from corral.runtime.cgroups.manager import Manager, open_manager, reopen
from corral.runtime.cgroups.validate import check

__all__ = ["CgroupError", "Manager", "check", "open_manager", "reopen"]
