"""The single import point for certkiosk's errors.

Every error a user can cause derives from :class:`CertkioskError`; its ``str()`` is a complete
message in Simplified Chinese that names the input and what is wrong, so the command line and the
terminal UI can show it as it is, without a traceback.
"""

from __future__ import annotations


class CertkioskError(Exception):
    """Base class of every error certkiosk raises on bad input or a bad state."""


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


class ConfigError(CertkioskError):
    """The station's home or configuration is unusable."""


class ClusterError(CertkioskError):
    """A Dask cluster for archive verification is unusable: not installed, unreachable, no workers."""


class VersionMismatch(ClusterError):
    """A worker runs another certkiosk version than the client."""


_FIELD_LABELS = {
    "name": "姓名",
    "id_type": "证件类型",
    "id_number": "证件号码",
    "employer": "所在单位",
    "occupation_code": "职业编码",
    "occupation": "职业名称",
    "job_type": "工种名称",
    "level": "职业技能等级",
    "number": "证书编号",
    "issue_date": "发证日期",
    "evaluator": "评价机构",
    "issuer": "发证机构",
    "photo": "照片",
    "template": "模板",
}


def field_label(field: str) -> str:
    """The Chinese label of a record field followed by its name, e.g. ``姓名(name)``."""
    label = _FIELD_LABELS.get(field)
    return f"{label}({field})" if label else field
