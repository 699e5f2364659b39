"""The `mediagen` command: run the service, manage users and keys, generate from the shell.

One Typer app (`common.app`); each module adds its commands to it when imported here.
"""

from mediagen.cli import accounts, models, remote, server
from mediagen.cli.common import app

__all__ = ["accounts", "app", "models", "remote", "server"]
