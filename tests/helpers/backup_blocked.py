"""Child process for the SIGKILL test: start a backup and stop in the middle of writing it.

Usage: python -m tests.helpers.backup_blocked HOME DEST PASSPHRASE
After the first member is in the (temporary) ZIP it prints ``writing`` and waits on stdin
forever, so the test can kill it at a known point without timing guesses.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path
from typing import Any

from certgen.station.backup import create_backup
from certgen.station.home import StationHome

_original = zipfile.ZipFile.write


def _write_then_block(self: zipfile.ZipFile, *args: Any, **kwargs: Any) -> None:
    _original(self, *args, **kwargs)
    print("writing", flush=True)
    sys.stdin.read()


def main() -> None:
    zipfile.ZipFile.write = _write_then_block  # type: ignore[method-assign]
    create_backup(StationHome(Path(sys.argv[1]), "--home"), Path(sys.argv[2]), sys.argv[3])


if __name__ == "__main__":
    main()
