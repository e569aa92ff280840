"""cgroup v2 device rules: a BPF_PROG_TYPE_CGROUP_DEVICE program attached to the container's cgroup.

cgroup v2 has no devices controller; the kernel asks an eBPF program instead (as runc's
devicefilter and crun do). The program sees (type, access, major, minor) of each open/mknod and
answers 1 (allow) or 0 (deny). The OCI rules are evaluated like v1's devices.allow/deny list:
later rules win, so the program tests them last to first and the first match decides; when
nothing matches, access is allowed, as in a cgroup without rules.

    r2 = type, r3 = access, r4 = major, r5 = minor          (from struct bpf_cgroup_dev_ctx)
    for each rule, last first:
        if r2 != rule.type: next        (no test for type "a")
        if r3 & ~rule.access: next      (no test for "rwm")
        if r4 != rule.major: next       (no test for "*")
        if r5 != rule.minor: next
        return rule.allow                (a rule without tests ends the program)
    return 1
"""

from __future__ import annotations

import os
import struct

from corral.runtime.cgroups import devices
from corral.runtime.cgroups.common import CgroupError

TYPE_CHECKING = False  # typing costs milliseconds (it imports re) on every start
if TYPE_CHECKING:
    from collections.abc import Sequence

_SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "ppc64le": 361, "s390x": 351}
_BPF_PROG_LOAD, _BPF_PROG_ATTACH = 5, 8
_BPF_PROG_TYPE_CGROUP_DEVICE = 15
_BPF_CGROUP_DEVICE = 6
_BPF_F_ALLOW_MULTI = 2

_TYPES = {"c": 2, "b": 1}  # BPF_DEVCG_DEV_CHAR, BPF_DEVCG_DEV_BLOCK
_ACCESS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE

# opcodes (linux/bpf_common.h, linux/bpf.h)
_LDX_W = 0x61      # dst = *(u32 *)(src + off)
_AND_K = 0x57      # dst &= imm (64-bit)
_RSH_K = 0x77      # dst >>= imm
_MOV_X = 0xBF      # dst = src
_MOV_K = 0xB7      # dst = imm
_JNE_K = 0x55      # if dst != imm: pc += off
_EXIT = 0x95


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, (src << 4) | dst, off, imm)


def _rule_block(rule: devices.Rule) -> list[bytes]:
    kind, major, minor, access, allow = rule
    tests: list[tuple[int, int, int]] = []  # (register, value, kind of test)
    if kind != "a":
        tests.append((2, _TYPES[kind], 0))
    mask = sum(_ACCESS[a] for a in set(access))
    if mask != 7:
        tests.append((3, ~mask & 7, 1))
    if major is not None:
        tests.append((4, major, 0))
    if minor is not None:
        tests.append((5, minor, 0))
    # each test is one jump, except the access test (three instructions); then 2 for the verdict
    sizes = [3 if t[2] else 1 for t in tests]
    code: list[bytes] = []
    for index, (register, value, is_access) in enumerate(tests):
        remaining = sum(sizes[index + 1:]) + 2
        if is_access:
            code += [_insn(_MOV_X, dst=1, src=3), _insn(_AND_K, dst=1, imm=value),
                     _insn(_JNE_K, dst=1, off=remaining, imm=0)]
        else:
            code.append(_insn(_JNE_K, dst=register, off=remaining, imm=value))
    return [*code, _insn(_MOV_K, dst=0, imm=int(allow)), _insn(_EXIT)]


def program(rules: Sequence[devices.Rule]) -> bytes:
    """The eBPF instructions deciding like the rules (in their order) would."""
    code = [_insn(_LDX_W, dst=2, src=1, off=0), _insn(_AND_K, dst=2, imm=0xFFFF),
            _insn(_LDX_W, dst=3, src=1, off=0), _insn(_RSH_K, dst=3, imm=16),
            _insn(_LDX_W, dst=4, src=1, off=4), _insn(_LDX_W, dst=5, src=1, off=8)]
    for rule in reversed(rules):
        block = _rule_block(rule)
        code += block
        if len(block) == 2:  # matches every device: what follows could never run (the
            return b"".join(code)  # verifier refuses unreachable instructions)
    code += [_insn(_MOV_K, dst=0, imm=1), _insn(_EXIT)]
    return b"".join(code)


def _bpf(command: int, attr: bytes) -> int:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    buffer = ctypes.create_string_buffer(attr, len(attr))
    rc = int(libc.syscall(ctypes.c_long(_SYS_BPF[os.uname().machine]), ctypes.c_long(command),
                          buffer, ctypes.c_long(len(attr))))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


def attach(directory: str, rules: Sequence[devices.Rule]) -> None:
    """Load the program for `rules` and attach it to the cgroup2 directory."""
    import ctypes

    if os.uname().machine not in _SYS_BPF:
        raise CgroupError(f"devices: no eBPF device filter for {os.uname().machine} yet")
    code = program(rules)
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(b"Apache-2.0")
    # union bpf_attr for BPF_PROG_LOAD: prog_type, insn_cnt, insns, license, then zeros
    load_attr = struct.pack("<IIQQ", _BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                            ctypes.addressof(insns), ctypes.addressof(license_)) + bytes(96)
    try:
        prog_fd = _bpf(_BPF_PROG_LOAD, load_attr)
    except OSError as err:
        raise CgroupError(f"devices: loading the eBPF device filter: {err.strerror}") from None
    try:
        cgroup_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attach_attr = struct.pack("<IIII", cgroup_fd, prog_fd, _BPF_CGROUP_DEVICE,
                                      _BPF_F_ALLOW_MULTI) + bytes(16)
            _bpf(_BPF_PROG_ATTACH, attach_attr)
        finally:
            os.close(cgroup_fd)
    except OSError as err:
        raise CgroupError(f"devices: attaching the eBPF device filter to {directory}: "
                          f"{err.strerror}") from None
    finally:
        os.close(prog_fd)
