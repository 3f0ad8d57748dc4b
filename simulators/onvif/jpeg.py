"""A tiny, valid JPEG (8x8 mid-grey, baseline) with a counter in a comment segment, for snapshots.

No imaging library is needed: one 8x8 block whose DC difference and AC coefficients are all zero
takes two Huffman codes (ITU-T T.81, section F.1.2), so the whole file is a few hundred bytes built
here. The COM segment (T.81 section B.2.4.5) carries the counter, so every snapshot hashes differently
while decoders show the same image.
"""

from __future__ import annotations

import struct


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", 0xFF00 | marker, len(payload) + 2) + payload


_QUANT = _segment(0xDB, b"\x00" + b"\x01" * 64)  # table 0, 8-bit, all ones
_FRAME = _segment(0xC0, struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00")  # 8x8, one component
# One code of length 1 ("0") per table: DC category 0, AC end-of-block (symbol 0x00).
_ONE_CODE = b"\x01" + b"\x00" * 15 + b"\x00"
_HUFFMAN = _segment(0xC4, b"\x00" + _ONE_CODE) + _segment(0xC4, b"\x10" + _ONE_CODE)
_SCAN = _segment(0xDA, b"\x01\x01\x00\x00\x3f\x00")
_ENTROPY = b"\x3f"  # bits 0 (DC) and 0 (EOB), padded with ones


def snapshot_jpeg(counter: int, label: str = "cityhub-sim") -> bytes:
    """The snapshot image, its comment saying ``label`` and ``counter``."""
    comment = _segment(0xFE, f"{label} frame {counter}".encode())
    return b"\xff\xd8" + comment + _QUANT + _FRAME + _HUFFMAN + _SCAN + _ENTROPY + b"\xff\xd9"
