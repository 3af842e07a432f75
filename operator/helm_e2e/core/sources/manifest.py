"""Read a few top-level fields of each object in a Helm manifest (pure), straight from YAML parser events.

Helm's `manifest` is every rendered object as one multi-document YAML string, and it is untrusted input
(a namespace writer controls the chart). So no Python object is built from it: values are never
constructed or held, aliases are refused (no billion-laughs expansion), the number of documents is
capped, and error messages give a line number, never a quote. libyaml (when present) parses ~1 MiB in
well under a second; PyYAML's pure-Python loader took ~10 s for the same on this project's machines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from helm_e2e.errors import ReleaseDecodeError

FieldPath = tuple[str, ...]  # ("metadata", "name")
_PARSER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class _Frame:
    path: FieldPath | None  # None: not on a path we read (in a sequence, under a complex key, too deep)
    is_map: bool
    children: int = 0  # nodes seen so far; in a mapping even = key, odd = value
    key: str | None = None


def manifest_fields(
    manifest: str, *, wanted: frozenset[FieldPath], max_documents: int
) -> Iterator[dict[FieldPath, str]]:
    """Per YAML document, the scalar values found at the `wanted` paths from its root mapping."""
    try:
        yield from _scan(manifest, wanted, max_documents)
    except yaml.MarkedYAMLError as e:
        where = f" at line {e.problem_mark.line + 1}" if e.problem_mark else ""
        raise ReleaseDecodeError(f"manifest is not valid YAML{where}") from e
    except yaml.YAMLError as e:
        raise ReleaseDecodeError(f"manifest is not valid YAML ({type(e).__name__})") from e


def _scan(manifest: str, wanted: frozenset[FieldPath], max_documents: int) -> Iterator[dict[FieldPath, str]]:
    depth = max((len(p) for p in wanted), default=0)
    documents, stack, fields = 0, list[_Frame](), dict[FieldPath, str]()
    for event in yaml.parse(manifest, Loader=_PARSER):
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1 if event.start_mark else 0
            raise ReleaseDecodeError(f"manifest uses a YAML alias (line {line})")
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > max_documents:
                raise ReleaseDecodeError(f"manifest has more than {max_documents} documents")
            stack, fields = [], {}
        elif isinstance(event, yaml.DocumentEndEvent):
            yield fields
        elif isinstance(event, yaml.CollectionEndEvent):
            stack.pop()
            if stack:
                stack[-1].children += 1
        elif isinstance(event, yaml.ScalarEvent | yaml.CollectionStartEvent):
            path = _child_path(stack)
            if isinstance(event, yaml.CollectionStartEvent):
                tracked = path if path is not None and len(path) < depth else None
                stack.append(_Frame(tracked, isinstance(event, yaml.MappingStartEvent)))
                continue
            parent = stack[-1] if stack else None
            if parent is not None and parent.is_map and parent.children % 2 == 0:
                parent.key = event.value  # a key
            elif path in wanted:
                fields[path] = event.value
            if parent is not None:
                parent.children += 1


def _child_path(stack: list[_Frame]) -> FieldPath | None:
    """Where the next node sits: () for a document's root, None when it is not on a path we read."""
    if not stack:
        return ()
    parent = stack[-1]
    if parent.path is None or not parent.is_map:
        return None
    if parent.children % 2 == 0:  # the node is a key: its own path is irrelevant
        parent.key = None
        return None
    return (*parent.path, parent.key) if parent.key is not None else None
