"""Untrusted text made fit for a mail part, XML and one-line messages (pure)."""

from __future__ import annotations

import re

# ANSI escape sequences (pytest colours: CSI ... final byte; OSC ... BEL/ST), then the control characters,
# lone surrogates and non-characters that are invalid in XML 1.0 and cannot be encoded into a mail part.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")


def clean_log(text: str) -> str:
    """Log text fit for a mail part and XML: no ANSI colours, no control characters, \\n line ends."""
    text = _ANSI.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _INVALID.sub("\N{REPLACEMENT CHARACTER}", text)
