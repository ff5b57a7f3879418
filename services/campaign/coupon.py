"""Coupons (优惠券), pure: a template, and the codes its stock is made of.

A template's stock is its codes, made when it is created: issuing takes a free one, so a code
is issued at most once and never beyond the stock, whatever runs at the same time."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

MAX_STOCK = 10_000
_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read aloud and typed by people
_CODE_LENGTH = 10  # 50 bits: not guessed, and unique in a tenant but for a rare retry


class Coupon(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    value: float = Field(gt=0, le=10_000, allow_inf_nan=False, description="CNY")
    stock: int = Field(ge=1, le=MAX_STOCK, description=f"codes to issue, at most {MAX_STOCK:,}")
    valid_days: int = Field(30, ge=1, le=3650, description="a code is valid this long from issue")

    @property
    def value_minor(self) -> int:
        return round(self.value * 100)


def new_codes(count: int) -> list[str]:
    return ["".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH)) for _ in range(count)]


def expires(issued_at: datetime, coupon: Coupon) -> datetime:
    return issued_at + timedelta(days=coupon.valid_days)
