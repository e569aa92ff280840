"""The engine's small error vocabulary and the one table that maps it to exit codes.

    CorralError
     ├── NotFound          an image, container, network, volume or file that does not exist
     ├── AlreadyExists     a name or id already taken
     ├── InvalidArgument   bad input: a flag, a value, a config field
     ├── Conflict          the object is in a state that forbids the request
     ├── CannotExecute     the container's program exists but cannot be executed (126)
     └── CommandNotFound   the container's program does not exist (127)

Raise with context (`raise NotFound(f"image {ref}") from e`); the CLI's edge prints one line and
exits with `exit_code(err)`. The runtime (`corral.runtime`) keeps its own errors: it never imports
the engine.
"""


class CorralError(Exception):
    """Base of every error the engine reports to its user."""

    exit_code = 125


class NotFound(CorralError):
    pass


class AlreadyExists(CorralError):
    pass


class InvalidArgument(CorralError):
    pass


class Conflict(CorralError):
    pass


class CannotExecute(CorralError):
    exit_code = 126


class CommandNotFound(CorralError):
    exit_code = 127


def exit_code(err: BaseException) -> int:
    """Docker's exit code for an error: 125 for engine errors, 126/127 for the program."""
    return err.exit_code if isinstance(err, CorralError) else 125
