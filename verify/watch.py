"""Scan-to-folder: verify each new image or PDF once it is completely written, then file it away.

Office scanners and multifunction printers write scans into a folder (often a network share), and
they write slowly. A file is taken only when it is *complete*: its size and modification time are
the same in two polls in a row and not zero, **and** it can be read (a half-written PNG is unreadable, a
half-written PDF may open but show no QR code). A stable file that still cannot be read is given :data:`PATIENCE` more
polls (a scanner that pauses mid-page) before it is filed as failed. Polling works the same on
local disks and network shares, where inotify does not see writes made by another machine.

After its verdict a file moves to ``done/`` (valid) or ``failed/`` (anything else) beside it;
a name already there gets a numbered suffix. No UI here: the kiosk calls :meth:`FolderWatch.poll`
from a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from verify.files import IMAGE_SUFFIXES, MAX_FILE_BYTES, PDF_SUFFIXES
from verify.reasons import Reason
from verify.status import VerificationStatus

DONE, FAILED = "done", "failed"
PATIENCE = 3
"""Extra polls a stable but unreadable file is waited for before it counts as failed."""
POLL_SECONDS = 1.0
"""How often the kiosk polls the folder."""
TEMPORARY = (".", "~")
"""Names starting or ending with these are scanners' temporary files: skipped."""


def _too_large(name: str, size: int) -> VerificationStatus:
    """Not read at all: a scan this large is no certificate (and would fill the memory)."""
    detail = f"文件过大：{size}字节，上限{MAX_FILE_BYTES}字节"
    return VerificationStatus(source=name).with_finding(Reason.UNREADABLE_FILE, detail)


def _incomplete(results: list[VerificationStatus]) -> bool:
    """Whether a file may still be arriving: unreadable, or (a PDF cut short can still open) no QR code."""
    return any(r.status == "unreadable" for r in results)


@dataclass(frozen=True)
class Checked:
    """One file verified and filed."""

    name: str
    """Its name in the watched folder."""
    results: tuple[VerificationStatus, ...]
    """One result per certificate found (or one saying why none)."""
    moved_to: Path | None
    """Where it was moved (None when the move failed; see ``error``)."""
    error: str | None = None
    """Why it could not be moved, in Chinese."""

    @property
    def valid(self) -> bool:
        return bool(self.results) and all(r.valid for r in self.results)


@dataclass
class FolderWatch:
    """Polls one folder; each call verifies the files that became complete since the last."""

    folder: Path
    """The watched folder (scans arrive here)."""
    verify: Callable[[bytes, str], list[VerificationStatus]]
    """File bytes and name -> results (``verify.files.verify_bytes`` bound to a trust bundle)."""
    patience: int = PATIENCE
    """Polls a stable but unreadable file is given."""
    _seen: dict[str, tuple[int, int]] = field(default_factory=dict)
    _tries: dict[str, int] = field(default_factory=dict)

    def candidates(self) -> list[Path]:
        """Image and PDF files directly in the folder, oldest first (no temporary files, no sub-folders)."""
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return []
        files = []
        for entry in entries:
            name = entry.name
            if name.startswith(TEMPORARY) or name.endswith(TEMPORARY):
                continue
            if Path(name).suffix.lower() not in IMAGE_SUFFIXES | PDF_SUFFIXES:
                continue
            try:
                if entry.is_file(follow_symlinks=False):
                    files.append((entry.stat(follow_symlinks=False).st_mtime_ns, name, Path(entry.path)))
            except OSError:  # gone between listing and looking: the next poll will know
                continue
        return [path for _, _, path in sorted(files)]

    def poll(self) -> list[Checked]:
        """Verify and file every file that is complete now; remember the others' size and time."""
        checked: list[Checked] = []
        present = set()
        for path in self.candidates():
            name = path.name
            present.add(name)
            try:
                stat = path.stat()
            except OSError:
                continue
            signature = (stat.st_size, stat.st_mtime_ns)
            previous, self._seen[name] = self._seen.get(name), signature
            if stat.st_size == 0 or previous != signature:
                continue  # new, empty or still growing: look again next poll
            if stat.st_size > MAX_FILE_BYTES:
                results = [_too_large(name, stat.st_size)]
            else:
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                results = self.verify(data, name)
            if _incomplete(results) and self._tries.get(name, 0) < self.patience:
                self._tries[name] = self._tries.get(name, 0) + 1
                continue
            checked.append(self._file(path, results))
            self._seen.pop(name, None)
            self._tries.pop(name, None)
        for name in set(self._seen) - present:
            self._seen.pop(name, None)
            self._tries.pop(name, None)
        return checked

    def _file(self, path: Path, results: list[VerificationStatus]) -> Checked:
        ok = bool(results) and all(r.valid for r in results)
        target_dir = self.folder / (DONE if ok else FAILED)
        try:
            target_dir.mkdir(exist_ok=True)
            target = _free_name(target_dir / path.name)
            os.replace(path, target)
        except OSError as exc:
            return Checked(path.name, tuple(results), None, f"无法移动 {path.name}：{exc.strerror or exc}")
        return Checked(path.name, tuple(results), target)


def _free_name(path: Path) -> Path:
    """``path``, or ``stem-2.ext``, ``stem-3.ext`` … when taken."""
    candidate, n = path, 1
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.stem}-{n}{path.suffix}")
    return candidate
