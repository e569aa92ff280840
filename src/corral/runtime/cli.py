"""corral-runtime's command line: runc's global flags, then one verb module per command.

Only the chosen verb's module is imported (start-up time is most of a verb's cost). Each verb
module has `configure(parser)` (its flags) and `run(args, ctx) -> int`.
"""

from __future__ import annotations

import sys

from corral.runtime.errors import RuntimeFailure
from corral.runtime.log import Logger
from corral.runtime.record import record

VERSION = "0.1.0"
SPEC_VERSION = "1.1.0"
DEFAULT_ROOT = "/run/corral-runtime"

VERBS = {
    "create": "create a container",
    "start": "executes the user defined process in a created container",
    "run": "create and run a container",
    "state": "output the state of a container",
    "kill": "kill sends the specified signal (default: SIGTERM) to the container's init process",
    "delete": "delete any resources held by the container",
    "exec": "execute new process inside the container",
    "ps": "ps displays the processes running inside a container",
    "list": "lists containers started by corral-runtime with the given root",
    "pause": "pause suspends all processes inside the container",
    "resume": "resumes all processes that have been previously paused",
    "update": "update container resource constraints",
    "events": "display container events such as OOM notifications and resource usage statistics",
    "features": "show the enabled features",
    "spec": "create a new specification file",
}
_MODULES = {"exec": "exec_", "list": "list_"}
_MIGRATING = ("create", "run", "exec")  # they move a process into a cgroup: cgroups/warmup.py
_VALUE_FLAGS = ("root", "log", "log-format", "criu", "rootless")
_BOOL_FLAGS = ("debug", "systemd-cgroup", "help", "version")


@record(frozen=True)
class Globals:
    """runc's global flags, handed to every verb."""

    root: str
    log: Logger
    systemd_cgroup: bool


def _usage() -> str:
    verbs = "\n".join(f"   {name:<10} {text}" for name, text in VERBS.items())
    return (
        "usage: corral-runtime [global options] command [command options] [arguments...]\n\n"
        f"COMMANDS:\n{verbs}\n\nGLOBAL OPTIONS:\n"
        f"   --root value        root directory for storage of container state (default: {DEFAULT_ROOT})\n"
        "   --log value         set the log file to write corral-runtime logs to (default: stderr)\n"
        "   --log-format value  set the log format ('text' (default), or 'json')\n"
        "   --debug             enable debug logging\n"
        "   --systemd-cgroup    not supported: corral-runtime manages cgroupfs directly\n"
        "   --version, -v       print the version\n"
    )


def _split_globals(argv: list[str]) -> tuple[dict[str, str | bool], list[str]]:
    """Global flags as urfave/cli takes them (-x, --x, --x=v, --x v), up to the verb."""
    flags: dict[str, str | bool] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-v",):
            flags["version"] = True
            i += 1
            continue
        if arg == "-h":
            flags["help"] = True
            i += 1
            continue
        if not arg.startswith("-") or arg in ("-", "--"):
            break
        name, eq, value = arg.lstrip("-").partition("=")
        if name in _BOOL_FLAGS:
            flags[name] = value != "false" if eq else True
        elif name in _VALUE_FLAGS:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise RuntimeFailure(f"flag needs an argument: --{name}")
                value = argv[i]
            flags[name] = value
        else:
            raise RuntimeFailure(f"flag provided but not defined: -{name}")
        i += 1
    return flags, argv[i:]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    log = Logger(None, "text", False)
    try:
        flags, rest = _split_globals(args)
        log_format = str(flags.get("log-format", "text"))
        if log_format not in ("text", "json"):
            raise RuntimeFailure(f"invalid log-format: {log_format}")
        log = Logger(
            str(flags["log"]) if "log" in flags else None, log_format, bool(flags.get("debug"))
        )
        if flags.get("version"):
            print(f"corral-runtime version {VERSION}\nspec: {SPEC_VERSION}")
            return 0
        if flags.get("help") or not rest or rest[0] == "help":
            sys.stdout.write(_usage())
            return 0
        verb = rest[0]
        if verb not in VERBS:
            raise RuntimeFailure(f"No help topic for '{verb}'")
        if flags.get("systemd-cgroup"):
            raise RuntimeFailure(
                "--systemd-cgroup is not supported: corral-runtime manages cgroupfs directly "
                "(use podman's cgroup_manager=cgroupfs, containerd's SystemdCgroup=false)"
            )
        ctx = Globals(root=str(flags.get("root", DEFAULT_ROOT)), log=log, systemd_cgroup=False)
        if rest[1:2] in (["--help"], ["-h"]):
            sys.stdout.write(f"corral-runtime {verb}: {VERBS[verb]}\n")
            return 0
        if verb in _MIGRATING:
            from corral.runtime.cgroups import warmup

            warmup.start()  # before the imports below: they overlap the kernel's wait
        # __import__ rather than importlib.import_module: importlib's package costs start-up time
        module = __import__(f"corral.runtime.verbs.{_MODULES.get(verb, verb)}", fromlist=["run"])
        from corral.runtime.flags import parse

        code: int = module.run(parse(verb, module.FLAGS, module.ARGS, rest[1:]), ctx)
        return code
    except RuntimeFailure as e:
        log.error(str(e))
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # the edge: conmon and podman show this one line
        # An error nothing below named (a kernel refusal, a bug): one line like runc's, in the
        # log format callers parse; the traceback only with --debug.
        if log.debug_enabled:
            import traceback

            log.debug(traceback.format_exc())
        log.error(f"{type(e).__name__}: {e}")
        return 1
    finally:
        started = sys.modules.get("corral.runtime.cgroups.warmup")
        if started is not None:
            started.finish()  # a no-op once the verb reaped the child after its migration


if __name__ == "__main__":
    sys.exit(main())
