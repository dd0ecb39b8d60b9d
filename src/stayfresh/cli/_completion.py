"""``stayfresh completion bash|zsh|fish``: the shell's completion script, from click's own support."""

from __future__ import annotations

import click
from click.shell_completion import get_completion_class

from ._app import cli

#: the environment variable click's completion reads (``_<PROG>_COMPLETE``)
COMPLETE_VAR = "_STAYFRESH_COMPLETE"


@cli.command("completion")
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (commands, subcommands, options).

    \b
    bash:  eval "$(stayfresh completion bash)"    in ~/.bashrc (bash 4.4 or later)
    zsh:   eval "$(stayfresh completion zsh)"     in ~/.zshrc
    fish:  stayfresh completion fish > ~/.config/fish/completions/stayfresh.fish
    """
    complete = get_completion_class(shell)
    if complete is None:  # click knows every choice above
        raise click.UsageError(f"no completion for {shell}")
    root = click.get_current_context().find_root().command
    click.echo(complete(root, {}, "stayfresh", COMPLETE_VAR).source())
