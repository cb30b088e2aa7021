"""The single import point for certkiosk's errors.

Every error a user can cause derives from :class:`CertkioskError`; its ``str()`` is a complete
message in Simplified Chinese that names the input and what is wrong, so the command line and the
terminal UI can show it as it is, without a traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from certgen.labels import FIELD_LABELS


def _made_again(kind: type[CertkioskError], args: tuple[Any, ...], kwargs: dict[str, Any]) -> CertkioskError:
    return kind(*args, **kwargs)


class CertkioskError(Exception):
    """Base class of every error certkiosk raises on bad input or a bad state.

    Picklable with the arguments it was made with, whatever its ``__init__`` takes (an error
    raised in a worker process reaches the parent as itself, with its message)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return

        @functools.wraps(init)
        def recorded(self: CertkioskError, *args: Any, **kwargs: Any) -> None:
            if "_made_with" not in self.__dict__:  # the class's own arguments, not its bases' super() calls
                self.__dict__["_made_with"] = (args, kwargs)
            init(self, *args, **kwargs)

        setattr(cls, "__init__", recorded)  # noqa: B010 (a method replaced on the class being made)

    def __reduce__(self) -> Any:
        made = self.__dict__.get("_made_with")
        if made is None:  # made with the arguments it keeps in ``args``
            return super().__reduce__()
        return _made_again, (type(self), *made), self.__dict__


class FieldError(CertkioskError, ValueError):
    """A field of a certificate record is invalid."""

    def __init__(self, field: str, value: object, message: str) -> None:
        self.field = field
        """The record's field name, e.g. ``"id_number"``."""
        self.value = value
        """The value that was refused."""
        self.message = message
        """What is wrong, in Chinese, without the field name."""
        super().__init__(f"{field_label(field)}「{value}」{message}")


class RecordError(CertkioskError, ValueError):
    """A record has one or more invalid fields; ``errors`` lists every one of them."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = tuple(errors)
        """Every field error found, in field order."""
        super().__init__("；".join(str(e) for e in errors))


class NumberFormatError(CertkioskError, ValueError):
    """A certificate number or filing number does not follow the number rule."""

    def __init__(self, number: str, problems: list[str]) -> None:
        self.number = number
        """The number as given."""
        self.problems = tuple(problems)
        """Each problem as a Chinese sentence naming its positions."""
        super().__init__(f"证书编号「{number}」无效：" + "；".join(problems))


class KeyStoreError(CertkioskError):
    """A key file is missing, unreadable, or does not match its metadata."""


class WrongPassphrase(KeyStoreError):
    """The passphrase does not decrypt the institution's private key."""


class TrustError(CertkioskError):
    """The trust store or a trust bundle is unreadable or inconsistent."""


class TrustConflict(TrustError):
    """A bundle would replace a trusted key with a different one for the same kid."""


class RegisterError(CertkioskError):
    """The issuance register refused an operation."""


class PrintSerialUsed(RegisterError):
    """A certificate blank's print serial (印制流水码) is already recorded for another certificate."""

    def __init__(self, serial: str, number: str) -> None:
        self.serial, self.number = serial, number
        super().__init__(f"印制流水码 {serial} 已用于证书 {number}：一张证书用纸只能使用一次")


class DuplicateResult(RegisterError):
    """The person already holds a live certificate for this result (occupation, job type, level)."""

    def __init__(self, message: str, existing: str) -> None:
        self.existing = existing
        """The number of the live certificate that already exists."""
        super().__init__(message)


class NameMismatch(RegisterError):
    """The same identity document appears under two different names."""


class BatchClosed(RegisterError):
    """The batch was revoked: nothing more may be issued into it."""


class IssueBusy(CertkioskError):
    """Another issuing run holds the station's issuing lock."""


class DuplicateNumber(RegisterError):
    """A certificate number is already in the register."""


class PayloadError(CertkioskError, ValueError):
    """A QR payload could not be decoded.

    ``code`` is the stable verify reason code (``NOT_OUR_FORMAT`` or ``MALFORMED``); ``defect``
    names the exact defect (``prefix``, ``base45``, ``trailing``, ``tag``, ``alg``, ``kid`` ...).
    """

    code = "MALFORMED"
    defect = "malformed"

    def __init__(self, message: str, *, defect: str | None = None) -> None:
        if defect is not None:
            self.defect = defect
        super().__init__(message)


class NotOurFormat(PayloadError):
    """The text is not a certkiosk payload (unknown prefix or version)."""

    code = "NOT_OUR_FORMAT"


class MalformedPayload(PayloadError):
    """The text has our prefix but its base45, CBOR or COSE structure is broken."""

    code = "MALFORMED"


class ReportError(CertkioskError):
    """A report cannot be written: an unknown format, or the file system refused it."""


class BackupError(CertkioskError):
    """A backup could not be written, or a backup file is not one to trust."""


class BackupBusy(BackupError):
    """A backup refused because an issuing run holds the station's issuing lock."""


class SealError(CertkioskError):
    """The seal image is unusable."""


class SigningError(CertkioskError):
    """The PDF could not be signed."""


class ConfigError(CertkioskError):
    """The station's home or configuration is unusable."""


class ProfileError(ConfigError, ValueError):
    """A province profile (a station's own ``profiles/*.toml`` or a bundled one) is unusable; the
    message names the file and what is wrong."""


class ClusterError(CertkioskError):
    """A Dask cluster for archive verification is unusable: not installed, unreachable, no workers."""


class VersionMismatch(ClusterError):
    """A worker runs another certkiosk version than the client."""


class DiskFull(CertkioskError, OSError):
    """The file system holding ``path`` is full (ENOSPC, a quota, or SQLite's SQLITE_FULL).

    Also an OSError, so code that handles failed writes keeps handling it.
    """

    def __init__(self, path: object) -> None:
        self.path = str(path)
        """The file that could not be written."""
        super().__init__(28, "磁盘已满", self.path)

    def __str__(self) -> str:
        return f"磁盘已满：无法写入 {self.path}。请清理磁盘空间后重试（已有的记录未被改动）"


class TemplateError(CertkioskError):
    """A template file is missing or invalid."""


class FontError(CertkioskError):
    """The font is unusable, or lacks characters the certificate needs."""


class PhotoError(CertkioskError):
    """The photo cannot be used on a certificate."""


class LayoutError(CertkioskError):
    """The record's text does not fit its block."""


class PrintError(CertkioskError):
    """CUPS is missing, the queue is unknown or stopped, or the job was refused."""


class RosterError(CertkioskError):
    """The roster file cannot be read as a roster."""


class RosterChanged(RosterError):
    """The roster file changed after it was read and checked: what was checked is not what is there."""


@dataclass(frozen=True)
class RowProblem:
    """What is wrong with one roster row."""

    row: int
    """Spreadsheet row number."""
    message: str
    """The problem, in Chinese."""

    def __str__(self) -> str:
        return f"第{self.row}行：{self.message}"


class BatchInvalid(CertkioskError):
    """Some rows of the roster are invalid; nothing was issued."""

    def __init__(self, problems: list[RowProblem]) -> None:
        self.problems = problems
        """Every problem, with its row number."""
        super().__init__(f"名册有{len(problems)}处错误，未发任何证书：\n" + "\n".join(str(p) for p in problems))


class ReportsDiscarded(Exception):
    """Raised into an ExitStack of reports being written, never out of it: the files written so
    far through atomic writes go (a batch whose streamed reports are written again from the
    register)."""


class WorkerDied(CertkioskError):
    """A batch's worker process ended without finishing its rows (killed: the memory limit, an
    operator, a crash in a native library). The certificates already issued stay; a re-run of
    the same batch recovers the rows that were in flight and continues."""


class DecoderUnavailable(CertkioskError):
    """The chosen decoder cannot be loaded on this machine."""


class BatchCancelled(CertkioskError):
    """The operator cancelled the batch (what was issued stays issued; re-running continues)."""


class CameraError(CertkioskError):
    """The kiosk's camera could not be opened or read (the message is in Chinese, for the screen)."""


def field_label(field: str) -> str:
    """The Chinese label of a record field followed by its name, e.g. ``姓名(name)``."""
    text = FIELD_LABELS.get(field)
    return f"{text}({field})" if text else field


class ArchiveStateError(CertkioskError):
    """An archive run's results in its state file cannot be read: replaced by a later run, or altered."""


class InputRefused(CertkioskError):
    """An input file was not read (or not read to its end): not a regular file, or over a limit."""


class Interrupted(KeyboardInterrupt):
    """A long run was asked to stop (SIGTERM, or Ctrl-C); its workers are stopped, finished work kept.

    A KeyboardInterrupt (not a CertkioskError): nothing was wrong with the input.
    """
