"""The part of ctypes the runtime calls libc with, built on `_ctypes` directly.

`import ctypes` costs about 1 ms of every create, run and exec: the package imports types,
struct and ctypes._endian and defines dozens of types. The runtime needs a few C integer types,
structures, byref/sizeof/addressof and libc's functions with errno. These are the very `_ctypes`
types ctypes is made of (ctypes.c_int is `class c_int(_SimpleCData): _type_ = "i"`, a CDLL
function is a CFuncPtr subclass with the same flags), so calls behave as through ctypes; the type
checker sees ctypes' own names. libseccomp (a profile's first build) and the cgroup2 eBPF loader
still use ctypes: they are off the common path.

Everything here is imported before pivot_root, like the rest of the init's modules.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ctypes import (
        CDLL,
        Structure,
        addressof,
        byref,
        c_char,
        c_int,
        c_long,
        c_uint,
        c_uint32,
        c_uint64,
        c_ulong,
        c_ushort,
        c_void_p,
        get_errno,
        sizeof,
    )
    from ctypes import c_size_t as c_size_t
    from typing import Any

    libc: CDLL

    def function(name: str, restype: type[c_int] | type[c_long] = c_int) -> Any:
        """(For the type checker; the run-time definition is below.)"""
        return getattr(libc, name)
else:
    import _ctypes
    from _ctypes import Structure, addressof, byref, get_errno, sizeof

    def _simple(name: str, code: str) -> type:
        """A ctypes scalar type, as ctypes/__init__.py declares each (`_type_` is its format)."""
        return type(name, (_ctypes._SimpleCData,), {"_type_": code, "__module__": __name__})

    c_int = _simple("c_int", "i")
    c_uint = _simple("c_uint", "I")
    c_long = _simple("c_long", "l")
    c_ulong = _simple("c_ulong", "L")
    c_ushort = _simple("c_ushort", "H")
    c_char = _simple("c_char", "c")
    c_void_p = _simple("c_void_p", "P")

    # The Linux ABIs the runtime runs on are LP64 (ctypes makes the same choice from sizeof)
    c_size_t = c_uint64 = c_ulong
    c_uint32 = c_uint

    class _Library:
        """The C library already loaded into the interpreter (ctypes.CDLL(None))."""

        def __init__(self) -> None:
            self._handle = _ctypes.dlopen(None, os.RTLD_NOW | os.RTLD_LOCAL)
            self._functions = {}

        def __getattr__(self, name):
            return function(name)

    libc = _Library()

    def function(name, restype=c_int):
        """libc's `name`: C calling convention, errno kept for get_errno(), `restype` result
        (ctypes' default, c_int, unless told)."""
        key = (name, restype)
        found = libc._functions.get(key)
        if found is None:
            class _Function(_ctypes.CFuncPtr):
                _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
                _restype_ = restype

            found = libc._functions[key] = _Function((name, libc))
        return found

__all__ = ["Structure", "addressof", "byref", "c_char", "c_int", "c_long", "c_size_t", "c_uint",
           "c_uint32", "c_uint64", "c_ulong", "c_ushort", "c_void_p", "function", "get_errno",
           "libc", "sizeof"]
