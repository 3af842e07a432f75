"""Rendering E2ESuite templates: a bounded, sandboxed Jinja2 whose errors never quote a value (pure).

Bounds: the environment of core/jinja_env.py (immutable sandbox, guards on one-step string builders,
a budget of `range` items per string) and a budget of output bytes per suite that rendering streams
against. CPU time is not bounded here: the caller renders in the
sandbox process (clients/sandbox.py), which has a time and a memory limit.

Errors say where (field path, template line) and what kind (the exception type, or a message built here
from the template's own source) — never Jinja's message, which may quote a looked-up value.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError

from helm_e2e.core.model.release import Release
from helm_e2e.core.plan import jinja_env
from helm_e2e.errors import SuiteInvalid

MAX_SUITE_OUTPUT = 1 * 2**20  # rendered bytes per suite
MAX_TEMPLATE_DEPTH = 64  # nesting of a suite's pod template; deeper is refused, not recursed into


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return jinja_env.ENV.from_string(source)


# --- errors without values -----------------------------------------------------------------------------


def _template_line(error: BaseException) -> int | None:
    if isinstance(error, jinja2.TemplateSyntaxError):
        return error.lineno
    line, tb = None, error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _chain(node: nodes.Node) -> list[str] | None:
    """`values.db.host` / `values['db']` as ['values', 'db', 'host']; None for anything computed."""
    parts: list[str] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            parts.append(str(node.arg.value))
        elif isinstance(node, nodes.Name):
            return [node.name, *reversed(parts)]
        else:
            return None
        node = node.node


def _missing(source: str, context: Mapping[str, Any]) -> str:
    """The first name or dotted path written in the template that the context lacks ('' if unknown)."""
    try:
        ast = jinja_env.ENV.parse(source)
    except jinja2.TemplateSyntaxError:
        return ""
    for name in sorted(meta.find_undeclared_variables(ast)):
        if name not in context and name not in jinja_env.ENV.globals:
            return name
    for found in ast.find_all((nodes.Getattr, nodes.Getitem)):
        chain = _chain(found)
        node: Any = context
        for i, part in enumerate(chain or []):
            if not isinstance(node, Mapping) or part not in node:
                return ".".join((chain or [])[: i + 1]) if i else ""
            node = node[part]
    return ""


def describe_template_error(error: BaseException, source: str, context: Mapping[str, Any]) -> str:
    """What kind of error and on which template line, in words of our own."""
    line = _template_line(error)
    where = f" (template line {line})" if line else ""
    if isinstance(error, jinja2.UndefinedError):
        name = _missing(source, context)
        return f"undefined {name!r}{where}" if name else f"undefined variable or attribute{where}"
    if isinstance(error, jinja2.TemplateSyntaxError):
        return f"template syntax error{where}"
    if isinstance(error, jinja_env.Bound):
        return f"{error.message}{where}"
    if isinstance(error, SecurityError):
        return f"refused by the sandbox{where}"
    return f"{type(error).__name__} while rendering{where}"


# --- rendering ------------------------------------------------------------------------------------------


class OutputBudget:
    """Rendered bytes a suite may still produce."""

    def __init__(self, limit: int = MAX_SUITE_OUTPUT) -> None:
        self.left = limit

    def spend(self, size: int) -> None:
        self.left -= size
        if self.left < 0:
            raise jinja_env.Bound("suite renders more than the output limit")


def render_text(text: str, context: Mapping[str, Any], path: str, *, budget: OutputBudget) -> str:
    """One string leaf; SuiteInvalid('', message) naming `path` when it cannot be rendered."""
    if "{" not in text:  # no Jinja syntax: nothing to render (most leaves of a pod spec)
        return text
    chunks: list[str] = []
    try:
        local = {**context, "range": jinja_env.budget_range([jinja_env.MAX_RANGE_ITEMS])}
        for chunk in _compile(text).generate(local):
            budget.spend(len(chunk))
            chunks.append(chunk)
    except Exception as e:  # template code may raise anything (RecursionError too): describe, never quote
        raise SuiteInvalid("", f"{path}: {describe_template_error(e, text, context)}") from None
    return "".join(chunks)


def render_tree(
    node: Any, context: Mapping[str, Any], path: str, *, budget: OutputBudget, depth: int = 0
) -> Any:
    """Every string leaf (dict values, list items) rendered; keys and other scalars kept as they are."""
    if depth > MAX_TEMPLATE_DEPTH:
        raise SuiteInvalid("", f"{path}: nested deeper than {MAX_TEMPLATE_DEPTH} levels")
    if isinstance(node, str):
        return render_text(node, context, path, budget=budget)
    if isinstance(node, Mapping):
        return {
            k: render_tree(v, context, f"{path}.{k}", budget=budget, depth=depth + 1) for k, v in node.items()
        }
    if isinstance(node, list):
        return [
            render_tree(v, context, f"{path}[{i}]", budget=budget, depth=depth + 1)
            for i, v in enumerate(node)
        ]
    return node


def build_context(release: Release, image_tag: str) -> dict[str, Any]:
    """What a template sees: release identity, chart, app version, values and (if known) the image tag."""
    ctx: dict[str, Any] = {
        "release": {
            "name": release.name,
            "namespace": release.namespace,
            "revision": release.revision,
            "trigger": release.trigger.value,
        },
        "chart": {
            "name": release.chart_name,
            "version": release.chart_version,
            "app_version": release.app_version,
        },
        "app_version": release.app_version,
        "values": release.values,  # the immutable sandbox forbids update(), append(), ...
    }
    if image_tag:  # missing tag: left undefined so a template using it fails with a clear message
        ctx["image_tag"] = image_tag
    return ctx
