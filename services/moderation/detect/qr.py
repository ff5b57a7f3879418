"""QR codes in a picture (二维码): every code's payload, read with zxing-cpp from the picture's
bytes. Bounded: a picture over the byte or pixel limit is refused before it is decoded (a small
file can claim a huge canvas: a decompression bomb), and anything Pillow cannot read is refused
too. Whether a payload is an ad is the content checks' question (`ContentChecks`)."""

from __future__ import annotations

import io
from dataclasses import dataclass

import zxingcpp
from PIL import Image

# 16 MP: a 12 MP phone photo passes. Decoding one this size costs up to ~1 s of CPU.
MAX_PIXELS = 16_000_000
# JPEGs are decoded at a reduced scale near this size (Pillow's draft mode, nearly free); a QR
# code big enough to be scanned from a chat stays readable, and the decode time is bounded.
_SCAN_SIDE = 2048
# The formats chat platforms deliver; Pillow's other parsers are attack surface only.
_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
# QR codes only: a product photo's EAN barcode is not an ad.
_QR = zxingcpp.BarcodeFormats([zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.MicroQRCode])


@dataclass(frozen=True)
class Scan:
    codes: tuple[str, ...] = ()  # the payloads, in the order found
    refused: str = ""  # why the picture was not read: "too_large" or "unreadable"


def read_qr_codes(picture: bytes, max_bytes: int, max_pixels: int = MAX_PIXELS) -> Scan:
    if len(picture) > max_bytes:
        return Scan(refused="too_large")
    try:
        image = Image.open(io.BytesIO(picture), formats=_FORMATS)  # reads the header only
        width, height = image.size
        if width * height > max_pixels:
            return Scan(refused="too_large")
        image.draft("L", (_SCAN_SIDE, _SCAN_SIDE))
        found = zxingcpp.read_barcodes(image.convert("L"), formats=_QR)
    except Image.DecompressionBombError:  # over Pillow's own limit, before ours could look
        return Scan(refused="too_large")
    except Exception:  # Pillow raises many kinds on hostile input; each means unreadable
        return Scan(refused="unreadable")
    return Scan(tuple(code.text for code in found if code.text))
