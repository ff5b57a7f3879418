"""Quizzes (有奖竞猜) and polls (投票), pure: questions an operator puts to a group. For a quiz,
the first message that is a correct answer (normalized: full-width, case, traditional, what is
put between the characters) wins its points; a poll counts one vote per member (the first),
by option number or option text, and announces the results when it closes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, tzinfo
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, Field, field_validator

from services.runtime.text import normalize

Choice = Annotated[str, Field(min_length=1, max_length=100)]


def _matchable(values: list[str]) -> list[str]:
    for value in values:
        if not normalize.keyword(value):
            raise ValueError(f"{value!r} has no letters or digits to match")
    return values


class Quiz(BaseModel):
    group_id: str = Field(min_length=1, max_length=128)
    question: str = Field(min_length=1, max_length=500)
    answers: list[Choice] = Field(min_length=1, max_length=10, description="any of them wins")
    points: int = Field(ge=1, le=100_000)
    closes_at: AwareDatetime

    _answers = field_validator("answers")(_matchable)


class Poll(BaseModel):
    group_id: str = Field(min_length=1, max_length=128)
    question: str = Field(min_length=1, max_length=500)
    options: list[Choice] = Field(min_length=2, max_length=20)
    closes_at: AwareDatetime
    hide_results: bool = Field(True, description="no counts until it closes")

    _options = field_validator("options")(_matchable)


def is_correct(text: str, answers: Sequence[str]) -> bool:
    said = normalize.keyword(text)
    return bool(said) and any(said == normalize.keyword(a) for a in answers)


def vote_of(text: str, options: Sequence[str]) -> int | None:
    """The option a message votes for: its number ("2", "２", "第2个" is not one) or its text."""
    said = normalize.keyword(text)
    if said.isdigit() and 1 <= int(said) <= len(options):
        return int(said) - 1
    for i, option in enumerate(options):
        if said and said == normalize.keyword(option):
            return i
    return None


def quiz_text(quiz: Quiz, tz: tzinfo) -> str:
    until = _until(quiz.closes_at, tz)
    return f"【有奖竞猜】{quiz.question}（第一个答对的奖励 {quiz.points} 积分，{until}截止）"


def quiz_won(name: str, answer: str, points: int) -> str:
    return f"恭喜 {name} 答对了！答案是「{answer}」，获得 {points} 积分。"


def quiz_unanswered(answers: Sequence[str]) -> str:
    return f"竞猜结束，没有人答对。答案是「{answers[0]}」。"


def poll_text(poll: Poll, tz: tzinfo) -> str:
    choices = "\n".join(f"{i}. {option}" for i, option in enumerate(poll.options, 1))
    until = _until(poll.closes_at, tz)
    return f"【投票】{poll.question}\n{choices}\n回复序号投票，每人一票，{until}截止。"


def poll_results(options: Sequence[str], counts: Mapping[int, int]) -> str:
    lines = "\n".join(f"{option}：{counts.get(i, 0)} 票" for i, option in enumerate(options))
    return f"投票结束，结果如下：\n{lines}"


def _until(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%m月%d日 %H:%M")
