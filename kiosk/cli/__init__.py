"""The ``certkiosk`` command line. Help in English and Chinese; messages in Chinese.

Every command is a thin shell over certgen / verify: it parses options, calls one function and
prints its result. Errors are shown as one line on stderr (exit 2), never as a traceback. One
module per command group (pip's ``commands/`` as the model); importing them registers them.
"""

from __future__ import annotations

from kiosk.cli import (  # noqa: F401  (registers the commands)
    backup,
    issue,
    keys,
    layout,
    misc,
    printing,
    recover,
    register,
    reissue,
    verify,
    x509,
)
from kiosk.cli.base import cli

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="certkiosk")
