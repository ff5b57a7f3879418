"""Pictures for the tests, QR codes made with segno (an encoder independent of the decoder)."""

from __future__ import annotations

import base64
import io

import segno
from PIL import Image

WECHAT_CARD = "https://u.wechat.com/EKxMBq8qWpUUVJtGZ2CN-Dg"


def qr_png(payload: str, scale: int = 4) -> bytes:
    out = io.BytesIO()
    segno.make(payload, micro=False).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def photo(*payloads: str, size: tuple[int, int] = (800, 600), kind: str = "PNG") -> bytes:
    """A picture with a gradient background and each QR code pasted on it side by side."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    for i, payload in enumerate(payloads):
        code = Image.open(io.BytesIO(qr_png(payload))).convert("RGB")
        image.paste(code, (40 + i * (code.width + 40), 60))
    out = io.BytesIO()
    image.save(out, kind, quality=85)
    return out.getvalue()


def data_url(picture: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(picture).decode()}"
