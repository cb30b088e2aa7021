"""The five vocational skill levels (职业技能等级) and how a certificate prints them."""

from __future__ import annotations

from typing import NamedTuple


class Level(NamedTuple):
    """One skill level of the national scheme."""

    digit: int
    """The level code used in the number rule and the data table: 1 (highest) to 5."""
    grade: str
    """The level's numbered name, e.g. ``三级``."""
    title: str
    """The level's traditional title, e.g. ``高级工``."""

    @property
    def text(self) -> str:
        """The printed form of the national rule (人社鉴发〔2021〕1号), e.g. ``三级/高级工``."""
        return f"{self.grade}/{self.title}"


LEVELS: dict[int, Level] = {
    5: Level(5, "五级", "初级工"),
    4: Level(4, "四级", "中级工"),
    3: Level(3, "三级", "高级工"),
    2: Level(2, "二级", "技师"),
    1: Level(1, "一级", "高级技师"),
}


def level_text(digit: int) -> str:
    """The printed level text for a level digit; ``ValueError`` for anything but 1-5."""
    try:
        return LEVELS[digit].text
    except KeyError:
        raise ValueError(f"职业技能等级应为1-5，收到 {digit!r}") from None
