"""corral-runtime's errors. Every failure the user should see is a RuntimeFailure with one line.

    RuntimeFailure            the CLI prints it to stderr and --log (runc's format) and exits 1
     ├── NotFound             unknown container id ("container does not exist")
     ├── AlreadyExists        duplicate container id
     ├── InvalidConfig        config.json (or process.json) fails a check; names the field
     ├── InvalidState         the verb is not allowed in the container's current status
     ├── SeccompError         (linux/seccomp.py)
     ├── CapsError            (linux/caps.py)
     └── CgroupError          (cgroups/)
"""

from __future__ import annotations


class RuntimeFailure(Exception):
    """A failure reported to the user as one line; the CLI exits 1."""


class NotFound(RuntimeFailure):
    pass


class AlreadyExists(RuntimeFailure):
    pass


class InvalidConfig(RuntimeFailure):
    pass


class InvalidState(RuntimeFailure):
    pass


class suppress:
    """contextlib.suppress without importing contextlib (with collections and functools it
    costs ~3 ms of every verb's start-up)."""

    def __init__(self, *exceptions: type[BaseException]) -> None:
        self.exceptions = exceptions

    def __enter__(self) -> None:
        pass

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: object) -> bool:
        return kind is not None and issubclass(kind, self.exceptions)
