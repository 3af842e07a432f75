"""The Jinja2 environment suite templates run in: the immutable sandbox plus bounds (pure).

Guards on every str operation that can build a long string in one step (`*`, `+`, `%`, ljust/rjust/center/
zfill, format, replace, join, expandtabs and the matching filters; macro arguments and looked-up strings
past the limit), and `budget_range`, a `range` sharing one item budget across the loops of a render.
Bounds raise Bound, a SecurityError whose message is ours and quotes nothing.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Iterator
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_STRING = 256 * 1024  # longest string one operation may build
MAX_REPEAT = 100_000  # longest string/list `*` may build (as jinja2's MAX_RANGE)
MAX_EXPONENT = 1_024
MAX_RANGE_ITEMS = 100_000  # `range` items per rendered string, all loops together
_PRINTF = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_SIZED_STR_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


class Bound(SecurityError):
    """A bound of this module was hit; its message is ours and holds no value."""


def _check_printf(fmt: str) -> None:
    for width, precision in _PRINTF.findall(fmt):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_STRING):
                raise Bound("printf-style width or precision too large")


def _check_format_spec(fmt: str) -> None:
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return  # str.format raises the same ValueError itself
    for _, _, spec, _ in fields:
        if spec and ("{" in spec or any(int(n) > MAX_STRING for n in re.findall(r"\d+", spec))):
            raise Bound("format width too large")


def _check_length(length: int) -> None:
    if length > MAX_STRING:
        raise Bound(f"string longer than {MAX_STRING} bytes")


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
            raise Bound(f"exponent larger than {MAX_EXPONENT}")
        if operator == "%" and isinstance(left, str):
            _check_printf(left)
        if operator == "+" and isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _check_length(len(left) + len(right))
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
                if sized and len(seq) * times > MAX_REPEAT:
                    raise Bound(f"repetition longer than {MAX_REPEAT}")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            _check_str_call(owner, getattr(__obj, "__name__", ""), args)
        for arg in (*args, *kwargs.values()):  # e.g. a macro doubling its argument on each recursion
            if isinstance(arg, str):
                _check_length(len(arg))
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _sized(super().getattr(obj, attribute))

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _sized(super().getitem(obj, argument))


def _sized(value: Any) -> Any:
    """A looked-up string that grew past the limit (`ns.s ~ ns.s` in a loop) is refused when read."""
    if isinstance(value, str):
        _check_length(len(value))
    return value


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


ENV = _make_env()


def budget_range(budget: list[int]) -> Callable[..., Iterator[int]]:
    """`range` that shares one item budget across every loop of a render."""

    def bounded_range(*args: int) -> Iterator[int]:
        for item in range(*args):
            budget[0] -= 1
            if budget[0] < 0:
                raise Bound(f"loops ran more than {MAX_RANGE_ITEMS} range items")
            yield item

    return bounded_range
