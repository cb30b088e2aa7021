"""A labelled input with an inline error line, validated as the user types."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, Label


class Field(Vertical):
    """``label  [input]`` with the validator's message under it."""

    def __init__(
        self,
        label: str,
        field_id: str,
        *,
        check: Callable[[str], str | None] | None = None,
        value: str = "",
        placeholder: str = "",
        password: bool = False,
    ) -> None:
        super().__init__(id=f"field-{field_id}")
        self.label, self.field_id, self.check = label, field_id, check
        self.initial, self.placeholder, self.password = value, placeholder, password

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label(self.label, classes="label")
            yield Input(self.initial, placeholder=self.placeholder, password=self.password, id=self.field_id)
        # the message repeats what was typed: text, never Textual markup ("[/]" would crash, "[@click" act)
        yield Label("", classes="error", id=f"error-{self.field_id}", markup=False)

    @property
    def value(self) -> str:
        return self.query_one(Input).value

    @value.setter
    def value(self, text: str) -> None:
        self.query_one(Input).value = text

    def show_error(self, message: str | None) -> None:
        self.query_one(f"#error-{self.field_id}", Label).update(message or "")

    def on_input_changed(self, event: Input.Changed) -> None:
        if self.check is not None:
            self.show_error(self.check(event.value) if event.value else None)
