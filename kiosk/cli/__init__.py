"""The ``certkiosk`` command line. Help in English and Chinese; messages in Chinese.

Every command is a thin shell over certgen / verify: it parses options, calls one function and
prints its result. Errors are shown as one line on stderr (exit 2), never as a traceback. One
module per command group (pip's ``commands/`` as the model); importing them registers them.
"""

from __future__ import annotations

import os
import sys

from kiosk.cli import (  # noqa: F401  (registers the commands)
    backup,
    issue,
    keys,
    kiosk,
    layout,
    misc,
    printing,
    recover,
    register,
    register_sign,
    reissue,
    verify,
    x509,
)
from kiosk.cli.base import cli, quiet_broken_pipe

__all__ = ["cli", "main"]


def main() -> None:
    """Console-script entry point.

    When the reader of standard output goes away (``certkiosk verify ... | head``), exit quietly
    with 141 (128 + SIGPIPE) instead of printing "Broken pipe".
    """
    os.umask(0o077)  # whatever certkiosk creates holds personal data or keys: never world-readable
    try:
        cli(prog_name="certkiosk")
    except SystemExit:
        try:  # the last lines may still sit in the buffer: a closed pipe shows up here
            sys.stdout.flush()
        except BrokenPipeError:
            quiet_broken_pipe()
        raise
