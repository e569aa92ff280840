"""corral's default seccomp profile: an allowlist equivalent to Docker's default.

Anything not listed fails with EPERM (`SCMP_ACT_ERRNO`, errno 1), which is what Docker's profile
refuses: the kernel keyring (add_key, keyctl, request_key), module loading, kexec, reboot, swap,
mount/namespace calls and clock changes without the capability that allows them, bpf, userfaultfd,
perf_event_open, and so on. Some calls are allowed only with arguments that are harmless:

- `clone` without any CLONE_NEW* namespace flag unless the container holds CAP_SYS_ADMIN
  (creating a user namespace is the usual first step of a kernel exploit);
- `unshare` likewise;
- `clone3` answers ENOSYS without CAP_SYS_ADMIN (its flags live in memory seccomp cannot read),
  so libc falls back to `clone`, which the rule above can check;
- `personality` only with the personas a normal program asks for (Linux, UNAME26, and the query).

`profile(caps)` returns the config.json `linux.seccomp` section for a container holding `caps`.
"""

from __future__ import annotations

from collections.abc import Iterable

TYPE_CHECKING = False  # not typing's: `corral run` does not import typing
if TYPE_CHECKING:
    from typing import Any

_EPERM = 1
_ENOSYS = 38
# CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET (and NEWTIME via unshare).
_CLONE_NAMESPACE_FLAGS = (
    0x00020000 | 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000
)
_UNSHARE_NAMESPACE_FLAGS = _CLONE_NAMESPACE_FLAGS | 0x00000080

# Allowed for every container, grouped by what a program uses them for.
_ALWAYS: dict[str, tuple[str, ...]] = {
    "files": (
        "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
        "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
        "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
        "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr",
        "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64", "fsync",
        "ftruncate", "ftruncate64", "getcwd", "getdents", "getdents64", "getxattr", "lchown",
        "lchown32", "lgetxattr", "link", "linkat", "listxattr", "llistxattr", "_llseek",
        "lremovexattr", "lseek", "lsetxattr", "lstat", "lstat64", "mkdir", "mkdirat", "mknod",
        "mknodat", "newfstatat", "open", "openat", "openat2", "pread64", "preadv", "preadv2",
        "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink", "readlinkat", "readv",
        "removexattr", "rename", "renameat", "renameat2", "rmdir", "sendfile", "sendfile64",
        "setxattr", "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink",
        "symlinkat", "sync", "sync_file_range", "syncfs", "tee", "truncate", "truncate64",
        "umask", "unlink", "unlinkat", "utime", "utimensat", "utimensat_time64", "utimes",
        "vmsplice", "write", "writev", "memfd_create",
    ),
    "io_events": (
        "epoll_create", "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait",
        "epoll_pwait2", "epoll_wait", "epoll_wait_old", "eventfd", "eventfd2", "inotify_add_watch",
        "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "io_destroy",
        "io_getevents", "io_pgetevents", "io_pgetevents_time64", "io_setup", "io_submit", "ioctl", "pipe", "pipe2", "poll",
        "ppoll", "ppoll_time64", "pselect6", "pselect6_time64", "select", "_newselect",
        "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime", "timerfd_gettime64",
        "timerfd_settime", "timerfd_settime64", "fanotify_mark", "futex", "futex_time64",
        "futex_waitv", "get_robust_list", "set_robust_list", "membarrier",
    ),
    "memory": (
        "brk", "madvise", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect",
        "mremap", "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free",
        "pkey_mprotect", "remap_file_pages", "process_mrelease", "map_shadow_stack",
    ),
    "processes": (
        "arch_prctl", "capget", "capset", "exit", "exit_group", "execve", "execveat", "fork",
        "vfork", "getegid", "getegid32", "geteuid", "geteuid32", "getgid", "getgid32",
        "getgroups", "getgroups32", "getpgid", "getpgrp", "getpid", "getppid", "getpriority",
        "getresgid", "getresgid32", "getresuid", "getresuid32", "getrlimit", "getrusage",
        "getsid", "gettid", "getuid", "getuid32", "ioprio_get", "ioprio_set", "kill",
        "pidfd_open", "pidfd_send_signal", "prctl", "prlimit64", "ptrace", "process_vm_readv",
        "process_vm_writev",
        "restart_syscall", "rseq", "sched_get_priority_max", "sched_get_priority_min",
        "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
        "sched_rr_get_interval", "sched_rr_get_interval_time64", "sched_setaffinity",
        "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "set_thread_area",
        "set_tid_address", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid",
        "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority",
        "setregid", "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32",
        "setreuid", "setreuid32", "setrlimit", "setsid", "setuid", "setuid32", "tgkill", "tkill",
        "times", "ugetrlimit", "uname", "wait4", "waitid", "waitpid", "getcpu", "landlock_add_rule",
        "landlock_create_ruleset", "landlock_restrict_self", "seccomp",
    ),
    "signals": (
        "alarm", "pause", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
        "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64",
        "rt_tgsigqueueinfo", "sigaction", "sigaltstack", "signal", "sigpending", "sigprocmask",
        "sigreturn", "sigsuspend",
    ),
    "time": (
        "clock_getres", "clock_getres_time64", "clock_gettime", "clock_gettime64",
        "clock_nanosleep", "clock_nanosleep_time64", "getitimer", "gettimeofday", "nanosleep",
        "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
        "timer_gettime64", "timer_settime", "timer_settime64",
    ),
    "network": (
        "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
        "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send",
        "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketcall",
        "socketpair",
    ),
    "ipc": (
        "ipc", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive",
        "mq_timedreceive_time64", "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl",
        "msgget", "msgrcv", "msgsnd", "semctl", "semget", "semop", "semtimedop",
        "semtimedop_time64", "shmat", "shmctl", "shmdt", "shmget",
    ),
    "system_info": ("sysinfo", "get_thread_area", "getrandom"),
}

# Allowed only when the container holds the capability that governs them.
_WITH_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "mount", "mount_setattr", "move_mount", "name_to_handle_at", "open_tree", "perf_event_open",
        "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount",
        "umount2", "unshare",
    ),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv",
                       "process_vm_writev", "ptrace"),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex",
                     "clock_adjtime", "clock_adjtime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
}

# Personas a normal program asks for: PER_LINUX, UNAME26, PER_LINUX32, UNAME26|PER_LINUX32,
# and 0xffffffff (query the current persona).
_PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)


def profile(caps: Iterable[str]) -> dict[str, Any]:
    """The `linux.seccomp` section for a container whose bounding set is `caps`."""
    held = set(caps)
    allowed = {name for group in _ALWAYS.values() for name in group}
    for cap, names in _WITH_CAPABILITY.items():
        if cap in held:
            allowed.update(names)
    syscalls: list[dict[str, Any]] = [
        {"names": sorted(allowed), "action": "SCMP_ACT_ALLOW"},
    ]
    # Conditions in one rule are ANDed, so each allowed persona is a rule of its own.
    syscalls += [
        {
            "names": ["personality"],
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": persona, "valueTwo": 0, "op": "SCMP_CMP_EQ"}],
        }
        for persona in _PERSONALITIES
    ]
    if "CAP_SYS_ADMIN" not in held:
        syscalls.append(_clone_rule("clone", _CLONE_NAMESPACE_FLAGS))
        syscalls.append(_clone_rule("unshare", _UNSHARE_NAMESPACE_FLAGS))
        syscalls.append({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": _ENOSYS})
    return {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": _EPERM,
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": syscalls,
    }


def _clone_rule(name: str, namespace_flags: int) -> dict[str, Any]:
    """`name` allowed only when (flags & namespace_flags) == 0: no new namespaces."""
    return {
        "names": [name],
        "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": namespace_flags, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
    }
