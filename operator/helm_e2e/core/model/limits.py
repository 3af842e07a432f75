"""Bounded parsers for untrusted input (pure): JSON and YAML whose parsed size is known before parsing.

`json.loads` of 31 MiB of `{},` builds ten million dicts (~900 MiB); a YAML alias bomb is small as text
and as a graph but explodes in whatever walks it. Both are refused here with LimitExceeded, whose message
says which limit was hit and never quotes the input.
"""

from __future__ import annotations

import json
import re
from typing import Any

import yaml

from helm_e2e.errors import LimitExceeded

MAX_JSON_ITEMS = 200_000  # strings plus `{`, `[` and `,` outside strings, in one document
MAX_YAML_BYTES = 1 * 2**20
MAX_YAML_NODES = 50_000
MAX_YAML_ALIASES = 64  # anchors are rare in manifests; a few are fine, an alias tree is a bomb
# one JSON string (possessive: no backtracking state per character, Python >= 3.11), or one structural byte
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]++|\\.)*+"|[{\[,]', re.DOTALL)


def count_json_items(raw: bytes, *, stop_after: int | None = None) -> int:
    """Strings plus `{`, `[` and `,` outside strings: a bound of the objects `json.loads` would build
    (about 100 bytes each at most, beside the strings' own text). Stops counting past `stop_after`."""
    count = 0
    for _ in _JSON_TOKEN.finditer(raw):  # one match at a time: constant memory, whatever the input
        count += 1
        if stop_after is not None and count > stop_after:
            break
    return count


def check_json(raw: bytes, *, max_bytes: int, max_items: int = MAX_JSON_ITEMS) -> None:
    """LimitExceeded when parsing `raw` could allocate more than its limits allow."""
    if len(raw) > max_bytes:
        raise LimitExceeded(f"JSON is larger than {max_bytes} bytes")
    if count_json_items(raw, stop_after=max_items) > max_items:
        raise LimitExceeded(f"JSON has more than {max_items} values")


def load_json(raw: bytes, *, max_bytes: int, max_items: int = MAX_JSON_ITEMS) -> Any:
    """`json.loads` after check_json; ValueError (or RecursionError) when it is not JSON."""
    check_json(raw, max_bytes=max_bytes, max_items=max_items)
    return json.loads(raw)


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader counting composed nodes and alias references as it goes."""

    def __init__(self, stream: str, *, max_nodes: int, max_aliases: int) -> None:
        super().__init__(stream)
        self._nodes_left = max_nodes
        self._aliases_left = max_aliases

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self._aliases_left -= 1
            if self._aliases_left < 0:
                raise LimitExceeded("YAML uses more aliases than allowed")
        self._nodes_left -= 1
        if self._nodes_left < 0:
            raise LimitExceeded("YAML has more nodes than allowed")
        return super().compose_node(parent, index)


def load_yaml(
    text: str,
    *,
    max_bytes: int = MAX_YAML_BYTES,
    max_nodes: int = MAX_YAML_NODES,
    max_aliases: int = MAX_YAML_ALIASES,
) -> Any:
    """One YAML document, safely: LimitExceeded past a limit, yaml.YAMLError when it is not YAML."""
    return _load(text, max_bytes=max_bytes, max_nodes=max_nodes, max_aliases=max_aliases, many=False)


def load_yaml_all(
    text: str,
    *,
    max_bytes: int = MAX_YAML_BYTES,
    max_nodes: int = MAX_YAML_NODES,
    max_aliases: int = MAX_YAML_ALIASES,
) -> list[Any]:
    """Every document of a multi-document stream; the limits apply to the whole stream."""
    docs = _load(text, max_bytes=max_bytes, max_nodes=max_nodes, max_aliases=max_aliases, many=True)
    return list(docs)


def _load(text: str, *, max_bytes: int, max_nodes: int, max_aliases: int, many: bool) -> Any:
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise LimitExceeded(f"YAML is larger than {max_bytes} bytes")
    loader = _BoundedLoader(text, max_nodes=max_nodes, max_aliases=max_aliases)
    try:
        if not many:
            return loader.get_single_data()
        docs = []
        while loader.check_data():  # type: ignore[no-untyped-call]
            docs.append(loader.get_data())
        return docs
    finally:
        loader.dispose()
