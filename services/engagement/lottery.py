"""Lottery (抽奖), pure: a prize pool, the steps of a draw, and the pick.

A draw is a document that moves through its steps, each written before the next is taken, so
that a draw interrupted anywhere is finished by whoever finds it (the client trying again with
its `draw_id`, or the repair sweep) and never twice:

    started → picked → won        (the points are spent with the pick, a prize's stock taken)
            ↘ refused  ↘ debited  (not enough points; the prize went meanwhile: pick again)
            ↘ blank, refunded     (drew nothing; every prize went while it was drawn: points back)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from pydantic import BaseModel, Field

MAX_PRIZES = 20
MAX_STOCK = 10_000  # a prize's stock document lists the draws that took from it
FINISHED = ("won", "blank", "refused", "refunded")


class Prize(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    weight: int = Field(ge=1, le=1_000_000)
    stock: int = Field(ge=0, le=MAX_STOCK, description=f"at most {MAX_STOCK}")


class Lottery(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    cost: int = Field(50, ge=1, le=1_000_000, description="points a draw costs")
    prizes: list[Prize] = Field(min_length=1, max_length=MAX_PRIZES)
    blank_weight: int = Field(
        0, ge=0, le=1_000_000, description="the weight of drawing nothing (谢谢参与)"
    )


def pick(
    weights: Sequence[int],
    remaining: Sequence[int],
    blank_weight: int,
    below: Callable[[int], int] = secrets.randbelow,
) -> int | None:
    """A prize index drawn by weight among those with stock left, or None for a blank.
    Raises LookupError when no prize is left (blanks alone are not worth a draw)."""
    live = [(i, w) for i, (w, left) in enumerate(zip(weights, remaining, strict=True)) if left > 0]
    if not live:
        raise LookupError("sold_out")
    total = sum(w for _, w in live) + blank_weight
    point = below(total)
    for i, w in live:
        if point < w:
            return i
        point -= w
    return None
