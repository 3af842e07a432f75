"""What the plugin leaves in the artifacts directory (HELM_E2E_ARTIFACTS_DIR, which the operator collects).

- `junit.xml`: pytest's own junitxml, as if `--junitxml` was given (unless the user gave one), in the
  `xunit1` family (xunit2 plus the `file`/`line` attributes of each testcase, from which the operator
  rebuilds pytest node ids).
- `pytest-output.txt`: pytest's terminal output, the last MAX_OUTPUT_BYTES of it (a tee of the terminal
  writer, as pytest's own pastebin plugin does), written when pytest ends.

A missing or unwritable directory is one line in the output; the run goes on.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from pathlib import Path
from typing import Any

import pytest

ARTIFACTS_ENV = "HELM_E2E_ARTIFACTS_DIR"
JUNIT_NAME = "junit.xml"
OUTPUT_NAME = "pytest-output.txt"
MAX_OUTPUT_BYTES = 1024 * 1024

_tail_key = pytest.StashKey["OutputTail"]()
_note_key = pytest.StashKey[str]()


class OutputTail:
    """The last `limit` bytes written, in bounded memory (chunks are dropped from the front)."""

    def __init__(self, limit: int = MAX_OUTPUT_BYTES) -> None:
        self.limit = limit
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.dropped = 0

    def write(self, text: str) -> None:
        data = text.encode("utf-8", "replace")
        if len(data) > self.limit:
            self.dropped += len(data) - self.limit
            data = data[-self.limit :]
        self.chunks.append(data)
        self.size += len(data)
        while self.size > self.limit:
            head = self.chunks.popleft()
            excess = self.size - self.limit
            if len(head) > excess:
                self.chunks.appendleft(head[excess:])
                self.size -= excess
                self.dropped += excess
            else:
                self.size -= len(head)
                self.dropped += len(head)

    def getvalue(self) -> bytes:
        data = b"".join(self.chunks)
        if not self.dropped:
            return data
        data = data.lstrip(bytes(range(0x80, 0xC0)))  # no half character after the cut
        return f"[helm-e2e: the first {self.dropped} bytes of the output were cut]\n".encode() + data


def artifacts_dir() -> tuple[Path | None, str]:
    """The directory to write to, or None and a one-line note why not ("" when the env is unset)."""
    value = os.environ.get(ARTIFACTS_ENV, "")
    if not value:
        return None, ""
    path = Path(value)
    if not path.is_dir():
        return None, f"helm-e2e: artifacts directory {value} does not exist; junit.xml and output not kept"
    if not os.access(path, os.W_OK | os.X_OK):
        return None, f"helm-e2e: artifacts directory {value} is not writable; junit.xml and output not kept"
    return path, ""


def prefer_xunit1(config: pytest.Config) -> None:
    """xunit2 (pytest's default) becomes xunit1: the same document plus `file` and `line` per testcase.

    pytest has no public setter for an ini value: the value goes into its ini cache, before the junitxml
    plugin reads it; legacy/xunit1 chosen by the user stay as they are."""
    cache = getattr(config, "_inicache", None)
    if isinstance(cache, dict) and config.getini("junit_family") == "xunit2":
        cache["junit_family"] = "xunit1"


def configure(config: pytest.Config, *, junit_default: str) -> None:
    """Before pytest's junitxml reads its options: where junit.xml goes, and whether output is kept."""
    directory, note = artifacts_dir()
    if note:
        config.stash[_note_key] = note
    user_path = getattr(config.option, "xmlpath", None)
    if directory is not None:
        if not hasattr(config, "workerinput"):  # pytest-xdist: the controller keeps the output
            config.stash[_tail_key] = OutputTail()
        if not user_path:
            config.option.xmlpath = str(directory / JUNIT_NAME)
    elif not user_path and junit_default:
        config.option.xmlpath = junit_default
    if getattr(config.option, "xmlpath", None):
        prefer_xunit1(config)


def start_output_copy(config: pytest.Config) -> None:
    """After the terminal reporter exists: say why nothing is kept, or tee what it writes."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    note = config.stash.get(_note_key, "")
    if note:
        if reporter is not None:
            reporter.write_line(note)
        else:
            print(note, file=sys.stderr)
    tail = config.stash.get(_tail_key, None)
    if tail is None or reporter is None:
        return
    writer = reporter._tw  # as pytest's pastebin plugin does; there is no public hook for the output
    original = writer.write

    def tee(s: str, **kwargs: Any) -> None:
        original(s, **kwargs)
        tail.write(s)

    writer.write = tee


def write_output(config: pytest.Config) -> None:
    tail = config.stash.get(_tail_key, None)
    directory, _ = artifacts_dir()
    if tail is None or directory is None:
        return
    try:
        (directory / OUTPUT_NAME).write_bytes(tail.getvalue())
    except OSError as e:
        print(f"helm-e2e: {OUTPUT_NAME} not written: {e.strerror}", file=sys.stderr)
