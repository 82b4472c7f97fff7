"""Text a caller sends, checked before it reaches a store."""

from __future__ import annotations

from vibe.platform.errors import InvalidArgument


def plain_text(name: str, value: str, multiline: bool = False) -> str:
    """`value`, if PostgreSQL can store it and it belongs in its field: no NUL, no lone
    surrogate (not UTF-8), no control character (but newline, CR and tab in `multiline`
    text). Checked here, in front of the core, so that no caller's text becomes a 500.
    (Issue 14's vibe/platform/validation.py checks the same at the edges: once both are
    in, this defers to it.)"""
    for index, ch in enumerate(value):
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise InvalidArgument(f"{name} holds a lone surrogate (U+{ord(ch):04X}) at {index}: send valid UTF-8 text")
        if (ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0) and not (multiline and ch in "\n\r\t"):
            raise InvalidArgument(f"{name} holds the control character U+{ord(ch):04X} at {index}")
    return value
