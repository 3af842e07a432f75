"""The runs list's pagination cursor (pure): which namespace of the viewer's scope, and the apiserver's own
`continue` token inside it. Opaque to the page; a cursor that does not decode is a 400, never a guess."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

MAX_CURSOR = 4096  # characters: the apiserver's tokens are a few hundred


class CursorInvalid(ValueError):
    """The `continue` parameter is not a cursor this viewer made."""


@dataclass(frozen=True)
class Cursor:
    index: int = 0  # which of the listed targets (namespaces, or the one cluster-wide list)
    token: str = ""  # the apiserver's continue token within it ("" = from the start)


def encode_cursor(cursor: Cursor) -> str:
    raw = json.dumps({"i": cursor.index, "c": cursor.token}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(text: str, *, targets: int) -> Cursor:
    """`text` from a previous page ("" = the first page); `targets`: how many lists the scope has."""
    if not text:
        return Cursor()
    if len(text) > MAX_CURSOR:
        raise CursorInvalid("the continue cursor is too long")
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (binascii.Error, ValueError) as e:
        raise CursorInvalid("the continue cursor does not decode") from e
    if not isinstance(data, dict):
        raise CursorInvalid("the continue cursor does not decode")
    index, token = data.get("i"), data.get("c")
    if not isinstance(index, int) or not isinstance(token, str) or not 0 <= index < targets:
        raise CursorInvalid("the continue cursor does not fit this list")
    return Cursor(index, token)
