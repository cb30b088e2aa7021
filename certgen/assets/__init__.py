"""Run-time data shipped inside the package: certificate templates and the bundled font.

In the repository, ``templates`` and ``fonts`` here are symbolic links to the top-level
``templates/`` and ``fonts/`` folders, so a checkout, an editable install and the built wheel and
sdist (which carry the files themselves) all find them the same way: through
``importlib.resources``, never by walking up from a module's file.
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

_EXTRACTED = ExitStack()
atexit.register(_EXTRACTED.close)


def templates() -> Traversable:
    """The folder of shipped certificate templates (``*.toml``)."""
    return resources.files(__name__) / "templates"


def shipped_file(package: str, *parts: str) -> Path:
    """A data file shipped in ``package`` as a real path, for libraries that open files by name;
    extracted to a temporary file for the life of the process if the package is not on the file
    system (e.g. imported from a zip)."""
    resource = resources.files(package)
    for part in parts:
        resource = resource / part
    return _EXTRACTED.enter_context(resources.as_file(resource))


def font_file(name: str) -> Path:
    """A shipped font file (reportlab opens fonts by path)."""
    return shipped_file(__name__, "fonts", name)
