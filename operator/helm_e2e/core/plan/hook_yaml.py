"""Bounded parsing of one hook manifest (pure): YAML in, a JSON-shaped dict out, or a one-line reason.

A hook manifest is untrusted (anyone who can write a Helm release Secret writes it), so parsing is bounded:
- at most MAX_MANIFEST_BYTES of text (a ConfigMap or Secret holds at most 1 MiB anyway);
- no YAML aliases: an alias is how a few hundred bytes ("billion laughs") expand into gigabytes once the
  shared nodes are walked; Helm renders none, so refusing them costs no real chart anything;
- nesting deeper than Python's recursion limit is refused (RecursionError), not crashed on;
- timestamps stay strings and non-string keys become strings, as `sigs.k8s.io/yaml` (YAML → JSON) does;
  anything that has no JSON form (binary, sets, non-finite floats) is refused.
Reasons never quote the manifest.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.events import AliasEvent
from yaml.nodes import Node

MAX_MANIFEST_BYTES = 1_048_576
_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class HookManifestInvalid(ValueError):
    """The manifest cannot be used; `str(e)` is a one-line reason without any of its content."""


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases and leaves timestamps as plain strings."""

    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag != _TIMESTAMP]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            raise HookManifestInvalid("manifest uses YAML aliases (refused: they can expand without bound)")
        return super().compose_node(parent, index)


def _to_json(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if not isinstance(key, str | int | float | bool) or key is None:
                raise HookManifestInvalid("manifest has a map key that is not a scalar")
            out[str(key).lower() if isinstance(key, bool) else str(key)] = _to_json(value)
        return out
    if isinstance(node, list):
        return [_to_json(v) for v in node]
    if isinstance(node, float) and not math.isfinite(node):
        raise HookManifestInvalid("manifest has a number that is not finite")
    if node is None or isinstance(node, str | int | float | bool):
        return node
    raise HookManifestInvalid(f"manifest holds a {type(node).__name__}, which has no JSON form")


def parse_hook_manifest(text: str) -> dict[str, Any]:
    """One Kubernetes object from a hook's manifest, or HookManifestInvalid with a one-line reason."""
    if len(text.encode(errors="replace")) > MAX_MANIFEST_BYTES:
        raise HookManifestInvalid(f"manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        doc = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 - a SafeLoader subclass
    except HookManifestInvalid:
        raise
    except (yaml.YAMLError, ValueError) as e:  # ValueError: e.g. a bad escape; never quote the input
        raise HookManifestInvalid("manifest is not valid YAML (a single document)") from e
    except RecursionError as e:
        raise HookManifestInvalid("manifest is nested too deeply") from e
    if not isinstance(doc, dict):
        raise HookManifestInvalid("manifest is not a Kubernetes object")
    try:
        parsed: dict[str, Any] = _to_json(doc)
    except RecursionError as e:
        raise HookManifestInvalid("manifest is nested too deeply") from e
    return parsed
