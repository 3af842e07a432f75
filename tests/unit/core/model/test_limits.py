"""Bounded JSON and YAML parsing: what would be allocated is known before parsing starts."""

from __future__ import annotations

import json

import pytest
import yaml

from helm_e2e.core.model.limits import count_json_items, load_json, load_yaml, load_yaml_all
from helm_e2e.errors import LimitExceeded


def test_counts_strings_and_structure_outside_strings_only() -> None:
    raw = json.dumps({"a": [1, 2, {"b": "x,{[y"}], "manifest": "k: {v, w}\n" * 100}).encode()
    # strings: a, b, x,{[y, manifest, its value = 5; outside: { [ , , { , = 6
    assert count_json_items(raw) == 11


def test_escaped_quotes_do_not_end_a_string() -> None:
    assert count_json_items(json.dumps(['a\\"b,{,[', "c"]).encode()) == 4


def test_a_structure_bomb_is_refused_before_parsing() -> None:
    bomb = b"[" + b"{}," * 300_000 + b"{}]"
    with pytest.raises(LimitExceeded, match="more than 200000 values"):
        load_json(bomb, max_bytes=len(bomb))


def test_oversized_json_is_refused_by_size() -> None:
    with pytest.raises(LimitExceeded, match="larger than 10 bytes"):
        load_json(b'"01234567890"', max_bytes=10)


def test_a_long_string_is_one_value() -> None:
    raw = json.dumps({"blob": "x" * 2**20}).encode()
    assert count_json_items(raw) == 3
    assert load_json(raw, max_bytes=len(raw), max_items=3)["blob"] == "x" * 2**20


def test_invalid_json_is_a_value_error_as_from_json_loads() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json.JSONDecodeError is the documented ValueError
        load_json(b"{nope", max_bytes=100)


BILLION_LAUGHS = """
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""  # 72 alias references expand to 9**9 strings


def test_an_alias_bomb_is_refused() -> None:
    with pytest.raises(LimitExceeded, match="aliases"):
        load_yaml(BILLION_LAUGHS)


def test_a_few_anchors_are_fine() -> None:
    doc = load_yaml("base: &b {image: x}\none: *b\ntwo: *b\n")
    assert doc == {"base": {"image": "x"}, "one": {"image": "x"}, "two": {"image": "x"}}


def test_node_and_size_limits() -> None:
    with pytest.raises(LimitExceeded, match="nodes"):
        load_yaml("[" + "1," * 1000 + "1]", max_nodes=500)
    with pytest.raises(LimitExceeded, match="larger than"):
        load_yaml("a: " + "x" * 100, max_bytes=50)


def test_yaml_stays_safe_and_multi_document_streams_count_together() -> None:
    with pytest.raises(yaml.YAMLError):
        load_yaml("!!python/object/apply:os.system ['true']")
    assert load_yaml_all("a: 1\n---\nb: 2\n") == [{"a": 1}, {"b": 2}]
    with pytest.raises(LimitExceeded):
        load_yaml_all("[1, 2, 3]\n---\n[4, 5, 6]\n", max_nodes=6)
