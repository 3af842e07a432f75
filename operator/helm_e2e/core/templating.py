"""Rendering E2ESuite templates: a bounded, sandboxed Jinja2 whose errors never quote a value (pure).

Bounds: the immutable sandbox (no mutation, no private attributes), guards on every str operation that
can build a long string in one step (`*`, `+`, `%`, ljust/rjust/center/zfill, format, replace, join,
expandtabs and the matching filters), a budget of `range` iterations per string, and a budget of output
bytes per suite that rendering streams against. CPU time is not bounded here: the caller renders in the
sandbox process (adapters/sandbox.py), which has a time and a memory limit.

Errors say where (field path, template line) and what kind (the exception type, or a message built here
from the template's own source) — never Jinja's message, which may quote a looked-up value.
"""

from __future__ import annotations

import functools
import re
import string
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..errors import SuiteInvalid
from .models import Release

MAX_STRING = 256 * 1024  # longest string one operation may build
MAX_REPEAT = 100_000  # longest string/list `*` may build (as jinja2's MAX_RANGE)
MAX_EXPONENT = 1_024
MAX_RANGE_ITEMS = 100_000  # `range` items per rendered string, all loops together
MAX_SUITE_OUTPUT = 1 * 2**20  # rendered bytes per suite
MAX_TEMPLATE_DEPTH = 64  # nesting of a suite's pod template; deeper is refused, not recursed into
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_SIZED_STR_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


class _Bound(SecurityError):
    """A bound of this module was hit; its message is ours and holds no value."""


def _check_printf(fmt: str) -> None:
    for width, precision in _PRINTF.findall(fmt):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_STRING):
                raise _Bound("printf-style width or precision too large")


def _check_format_spec(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same ValueError itself
    for _, _, spec, _ in fields:
        if spec and ("{" in spec or any(int(n) > MAX_STRING for n in re.findall(r"\d+", spec))):
            raise _Bound("format width too large")


def _check_length(length: int) -> None:
    if length > MAX_STRING:
        raise _Bound(f"string longer than {MAX_STRING} bytes")


def _check_join(separator: str, items: Any) -> None:
    if isinstance(items, list | tuple):
        sizes = sum(len(x) if isinstance(x, str) else 32 for x in items)
        _check_length(len(separator) * len(items) + sizes)


def _check_str_call(text: str, method: str, args: tuple[Any, ...]) -> None:
    first = args[0] if args else None
    if method in _SIZED_STR_METHODS and isinstance(first, int):
        _check_length(first)
    elif method in ("format", "format_map"):
        _check_format_spec(text)
    elif method == "replace" and len(args) >= 2 and isinstance(first, str) and isinstance(args[1], str):
        _check_length(len(text) + (text.count(first) if first else len(text) + 1) * len(args[1]))
    elif method == "expandtabs":
        _check_length(len(text) * (first if isinstance(first, int) else 8))
    elif method == "join":
        _check_join(text, first)


class _Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox plus guards on operations that build long strings in one step."""

    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and isinstance(right, int | float) and abs(right) > MAX_EXPONENT:
            raise _Bound(f"exponent larger than {MAX_EXPONENT}")
        if operator == "%" and isinstance(left, str):
            _check_printf(left)
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _check_length(len(left) + len(right))
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_REPEAT:
                    raise _Bound(f"repetition longer than {MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check_str_call(owner, getattr(__obj, "__name__", ""), args)
        return super().call(__context, __obj, *args, **kwargs)


def _guarded_filter(name: str, check: Callable[..., None]) -> Callable[..., Any]:
    original = FILTERS[name]

    def guarded(value: Any, *args: Any, **kwargs: Any) -> Any:
        check(value, *args, **kwargs)
        return original(value, *args, **kwargs)

    return guarded


def _width_arg(value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    lines = str(value).count("\n") + 1
    size = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    _check_length(len(str(value)) + size * lines)


def _printf_arg(value: Any, *_: Any, **__: Any) -> None:
    _check_printf(str(value))


def _join_arg(value: Any, d: str = "", *_: Any, **__: Any) -> None:
    _check_join(d, value)


def _replace_arg(value: Any, old: str = "", new: str = "", *_: Any, **__: Any) -> None:
    _check_str_call(str(value), "replace", (old, new))


def _make_env() -> _Sandbox:
    env = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False)
    for name, check in (
        ("center", _width_arg),
        ("indent", _width_arg),
        ("format", _printf_arg),
        ("join", _join_arg),
        ("replace", _replace_arg),
    ):
        env.filters[name] = _guarded_filter(name, check)
    return env


_ENV = _make_env()


def _budget_range(budget: list[int]) -> Callable[..., Iterator[int]]:
    """`range` that shares one item budget across every loop of a render."""

    def bounded_range(*args: int) -> Iterator[int]:
        for item in range(*args):
            budget[0] -= 1
            if budget[0] < 0:
                raise _Bound(f"loops ran more than {MAX_RANGE_ITEMS} range items")
            yield item

    return bounded_range


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> jinja2.Template:
    return _ENV.from_string(source)


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
        ast = _ENV.parse(source)
    except jinja2.TemplateSyntaxError:
        return ""
    for name in sorted(meta.find_undeclared_variables(ast)):
        if name not in context and name not in _ENV.globals:
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
    if isinstance(error, _Bound):
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
            raise _Bound("suite renders more than the output limit")


def render_text(text: str, context: Mapping[str, Any], path: str, *, budget: OutputBudget) -> str:
    """One string leaf; SuiteInvalid('', message) naming `path` when it cannot be rendered."""
    if "{" not in text:  # no Jinja syntax: nothing to render (most leaves of a pod spec)
        return text
    chunks: list[str] = []
    try:
        local = {**context, "range": _budget_range([MAX_RANGE_ITEMS])}
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
