"""A secret text (a private key's passphrase) that never shows itself in a repr, a log or a traceback."""

from __future__ import annotations


class Secret:
    """Holds a passphrase; ``repr``, ``str`` and formatting print a mask, only :meth:`reveal` gives it.

    Textual and rich print the local variables of a crashed frame: a passphrase held as a ``Secret``
    shows there as ``Secret('********')``.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret holds text, received {type(value).__name__}")
        self._value = value

    @classmethod
    def of(cls, value: str | Secret) -> Secret:
        """``value`` as a Secret (unchanged if it is one)."""
        return value if isinstance(value, Secret) else cls(value)

    def reveal(self) -> str:
        """The secret text: use it in an expression, never keep it in a variable."""
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __getstate__(self) -> str:
        return self._value

    def __setstate__(self, state: str) -> None:
        self._value = state
