"""Suite template rendering: errors say where and what kind but never a value; every way of building
a huge string or looping forever in one template is stopped."""

from __future__ import annotations

import time
from typing import Any

import pytest

from helm_e2e.core.plan.templating import OutputBudget, render_text, render_tree
from helm_e2e.errors import SuiteInvalid

PASSWORD = "hunter2-Pa55"
CONTEXT: dict[str, Any] = {
    "release": {"name": "web", "namespace": "shop", "revision": 3},
    "values": {"db": {"password": PASSWORD, "host": "db"}, "items": list(range(1000))},
    "image_tag": "1.0",
}


def problem(text: str, path: str = "tests[0].template.containers[0].args[0]") -> str:
    with pytest.raises(SuiteInvalid) as info:
        render_text(text, CONTEXT, path, budget=OutputBudget())
    message = info.value.message
    assert PASSWORD not in message
    assert "\n" not in message
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    return message


def test_renders_values_and_release_fields() -> None:
    out = render_tree(
        {"a": ["{{ release.name }}-{{ values.db.host }}", 3]}, CONTEXT, "t", budget=OutputBudget()
    )
    assert out == {"a": ["web-db", 3]}


def test_a_value_used_as_a_key_is_never_quoted() -> None:
    assert problem("{{ values[values.db.password] }}").endswith(
        "undefined variable or attribute (template line 1)"
    )


def test_an_undefined_path_is_named_from_the_template_source() -> None:
    message = problem("line one\n{{ values.db.pasword }}")
    assert (
        message == "tests[0].template.containers[0].args[0]: undefined 'values.db.pasword' (template line 2)"
    )
    assert "undefined 'image_tg'" in problem("{{ image_tg }}")


def test_a_syntax_error_names_its_line_only() -> None:
    assert problem("a\nb\n{{ values.db.password ").endswith("template syntax error (template line 3)")


@pytest.mark.parametrize(
    "template",
    [
        "{{ values.db.password | int + 'x' }}",  # TypeError
        "{{ 1 / 0 }}",
        "{{ values.db.password.__class__ }}",  # SecurityError of the sandbox
        "{{ {}[values.db.password] }}",  # jinja's message would quote the key
        "{{ values.db.password.encode('utf-8').decode('utf-32') }}",  # UnicodeDecodeError quotes bytes
    ],
)
def test_any_error_raised_by_template_code_is_reported_by_type_only(template: str) -> None:
    problem(template)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'a'.ljust(10**8) }}",
        "{{ 'a'.rjust(10**8) }}",
        "{{ 'a'.center(10**8) }}",
        "{{ 'a'.zfill(10**8) }}",
        "{{ '%0100000000d' % 1 }}",
        "{{ '%*d' % (100000000, 1) }}",
        "{{ '%0100000000d' | format(1) }}",
        "{{ '{:100000000}'.format(1) }}",
        "{{ '{:{w}}'.format(1, w=100000000) }}",
        "{{ 'a' | center(100000000) }}",
        "{{ 'a\nb' | indent(100000000) }}",
        "{{ ('x' * 100000).replace('x', 'xxxxxxxxxx') }}",
        "{{ ('x' * 100000) | replace('x', 'xxxxxxxxxx') }}",
        "{{ ('x' * 100000).join(['a'] * 100000) }}",
        "{{ (['x' * 100000] * 100000) | join }}",
        "{{ ('x' * 100000) * 100000 }}",
        "{{ 'x' * 100000 + 'x' * 100000 + 'x' * 100000 }}",
        "{{ 2 ** 100000 }}",
        "{{ ('\t' * 100000).expandtabs(100000) }}",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
        "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ d('x', 40) }}",
    ],
)
def test_every_one_step_string_bomb_is_refused_quickly(template: str) -> None:
    started = time.perf_counter()
    message = problem(template)
    assert time.perf_counter() - started < 1
    assert "while rendering" not in message  # stopped by a bound, not by running out of memory


def test_nested_range_loops_stop_at_the_iteration_budget() -> None:
    started = time.perf_counter()
    message = problem("{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
    assert "range items" in message
    assert time.perf_counter() - started < 2


def test_output_streams_against_the_suite_budget() -> None:
    started = time.perf_counter()
    message = problem(
        "{% for a in values['items'] %}{% for b in values['items'] %}xxxxxxxxxx{% endfor %}{% endfor %}"
    )
    assert "output limit" in message
    assert time.perf_counter() - started < 2


def test_the_budget_is_shared_by_every_string_of_a_suite() -> None:
    budget = OutputBudget(limit=100)
    render_text("{{ 'x' * 60 }}", CONTEXT, "a", budget=budget)
    with pytest.raises(SuiteInvalid, match="output limit"):
        render_text("{{ 'x' * 60 }}", CONTEXT, "b", budget=budget)


def test_recursion_is_reported_not_raised() -> None:
    assert "RecursionError" in problem("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}")


def test_deep_templates_are_refused() -> None:
    node: Any = "x"
    for _ in range(100):
        node = {"a": node}
    with pytest.raises(SuiteInvalid, match="nested deeper"):
        render_tree(node, CONTEXT, "t", budget=OutputBudget())
