"""The `corral` entry point: a click group whose commands are imported only when invoked.

Each command lives in its own module (`corral.cli.<group>`); `COMMANDS` maps the name a user types
to `module:attribute`, so `corral run` never imports the code of `corral build` or `corral push`.
"""

from __future__ import annotations

import importlib
import sys

import click

from corral import __version__
from corral.errors import CorralError, exit_code

# name -> "module:attribute" of a click command; docker's top-level aliases point at the same one.
COMMANDS: dict[str, str] = {
    "network": "corral.cli.network:network",
    "port": "corral.cli.network:port",
    "images": "corral.cli.image:images",
    "image": "corral.cli.image:image",
    "rmi": "corral.cli.image:rmi",
    "tag": "corral.cli.image:tag",
    "history": "corral.cli.image:history",
    "save": "corral.cli.image:save",
    "load": "corral.cli.image:load",
    "import": "corral.cli.image:import_",
    "pull": "corral.cli.registry:pull",
    "push": "corral.cli.registry:push",
    "login": "corral.cli.registry:login",
    "logout": "corral.cli.registry:logout",
    "manifest": "corral.cli.registry:manifest",
    "container": "corral.cli.container:container_command",
    "run": "corral.cli.container:run_command",
    "create": "corral.cli.container:create_command",
    "start": "corral.cli.container:start_command",
    "stop": "corral.cli.container:stop_command",
    "restart": "corral.cli.container:restart_command",
    "kill": "corral.cli.container:kill_command",
    "rm": "corral.cli.container:rm_command",
    "ps": "corral.cli.container:ps_command",
    "inspect": "corral.cli.container:inspect_command",
    "logs": "corral.cli.container:logs_command",
    "exec": "corral.cli.container:exec_command",
    "attach": "corral.cli.container:attach_command",
    "wait": "corral.cli.container:wait_command",
    "pause": "corral.cli.container:pause_command",
    "unpause": "corral.cli.container:unpause_command",
    "rename": "corral.cli.container:rename_command",
    "cp": "corral.cli.container:cp_command",
    "diff": "corral.cli.container:diff_command",
    "export": "corral.cli.container:export_command",
    "commit": "corral.cli.container:commit_command",
    "top": "corral.cli.container:top_command",
    "stats": "corral.cli.container:stats_command",
    "update": "corral.cli.container:update_command",
    "volume": "corral.cli.volume:volume_command",
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attr = target.partition(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-v", "--version", prog_name="corral")
def cli() -> None:
    """corral: build, ship and run containers, the way docker and podman do."""


def main() -> None:
    """Run the CLI; engine errors become one line on stderr and Docker's exit code."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(125)
    except click.exceptions.Abort:
        sys.exit(130)
    except CorralError as e:
        print(f"Error: {e}", file=sys.stderr)
        sys.exit(exit_code(e))
