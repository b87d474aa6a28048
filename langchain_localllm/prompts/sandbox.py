"""The bounded sandbox chat templates run in: untrusted code, stopped in time and memory.

A chat template comes from a model file or a server: code the user did not write. Jinja's
``ImmutableSandboxedEnvironment`` refuses attribute tricks and changes to the data given to
the template, but bounds neither time nor memory: two nested ``range(100000)`` loops run for
hours, ``'x' * 10**10`` allocates 10 GB, ``10 ** 10 ** 10`` never finishes, a list that grows
while the template loops over it never ends. This environment adds the bounds, cheaply enough
for every chat call:

- **time**: a wall-clock deadline and a number of loop iterations (as many as the size
  limit has characters), checked at every loop iteration (each ``for`` goes through
  :meth:`BoundedSandbox.bounded_loop`), call (macros: recursion), filter and output, so a
  template that loops without producing anything is stopped too (Jinja has no other way
  to repeat work);
- **size**: every string, list and integer a template makes, all it makes together (it may
  keep it all in a list), and its output have ceilings that grow with the size of its input
  (:class:`ChatTemplateLimits`). Operations that could
  allocate past it are checked *before* they run, from their arguments: repetition (``*``),
  powers, concatenation (``+``, ``~``), ``%``/``format`` widths, the amplifying string methods
  and filters (``center``, ``ljust``, ``replace``, ``join``, ``indent``, ``wordwrap``,
  ``tojson``, ...), integer arguments of every built-in call, ``append``;
- **recursion**: a macro calling itself without end is a typed error, not a raw
  ``RecursionError``.

A bound that trips raises :class:`~langchain_localllm.errors.ChatTemplateLimitError` naming
the template's source; the templates real models ship stay far below every bound (a
conversation renders in milliseconds, its output a small multiple of its input).
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from contextvars import ContextVar
from dataclasses import dataclass
from string import Formatter
from typing import Any

from jinja2 import TemplateError, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import LoopContext, Macro
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum

from langchain_localllm.errors import ChatTemplateError, ChatTemplateLimitError

__all__ = [
    "DEFAULT_LIMITS",
    "BoundedSandbox",
    "ChatTemplateLimits",
    "bounded",
    "check_size",
    "limit_error",
    "render_bounded",
    "template_error",
    "typed_errors",
]


@dataclass(frozen=True)
class ChatTemplateLimits:
    """How far one render of a chat template may go."""

    seconds: float = 2.0
    """Wall-clock seconds a render may take (plus ``seconds_per_million`` of input)."""
    seconds_per_million: float = 1.0
    """Extra seconds per million characters of input (messages, tools, template variables)."""
    chars: int = 1 << 22
    """Characters any one value, and the output, may have (plus ``chars_per_input``)."""
    chars_per_input: int = 8
    """Extra characters allowed per character of input."""
    int_bits: int = 1 << 16
    """Bits an integer may have."""


DEFAULT_LIMITS = ChatTemplateLimits()
"""The limits every render uses unless told otherwise."""

_MADE_PER_CHAR = 8  # all a render makes may be this many times the size limit
_MAX_DEPTH = 256  # nesting of lists and dicts a value may have when it is turned into text


class _Exceeded(BaseException):
    """A bound tripped. A ``BaseException``, so that no ``except Exception`` inside Jinja
    (or a filter) can swallow it; :func:`typed_errors` turns it into the typed error."""

    def __init__(self, limit: str, detail: str) -> None:
        super().__init__(detail)
        self.limit = limit
        self.detail = detail


class _Guard:
    """The bounds of one render (or one compilation)."""

    __slots__ = ("bits", "budget", "chars", "deadline", "items", "output", "seconds", "steps")

    def __init__(self, limits: ChatTemplateLimits, input_chars: int) -> None:
        self.seconds = limits.seconds + limits.seconds_per_million * input_chars / 1e6
        self.deadline = time.monotonic() + self.seconds
        self.chars = limits.chars + limits.chars_per_input * input_chars
        self.items = self.chars // 4
        self.bits = limits.int_bits
        self.output = self.chars  # characters left for expression output (macros included)
        self.steps = self.chars  # loop iterations left: work that writes nothing is bounded too
        self.budget = _MADE_PER_CHAR * self.chars  # characters (8 per list item) operations may make

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Exceeded("time", f"ran longer than {self.seconds:.1f} s")

    def step(self) -> None:
        """One loop iteration."""
        self.steps -= 1
        if self.steps < 0:
            raise _Exceeded("time", f"looped more than {self.chars:,} times")
        self.tick()

    def size(self, chars: float, what: str) -> None:
        if chars > self.chars:
            raise _Exceeded(
                "size", f"would make about {_count(chars)} characters in {what} (the limit is {self.chars:,})"
            )

    def many(self, items: float, what: str) -> None:
        if items > self.items:
            raise _Exceeded(
                "size", f"would make {what} of {_count(items)} items (the limit is {self.items:,})"
            )

    def ints(self, args: Iterable[Any], kwargs: dict[str, Any], what: str) -> None:
        for value in (*args, *kwargs.values()):
            if type(value) is int and abs(value) > self.items:
                raise _Exceeded(
                    "size", f"passed {_count(abs(value))} to {what} (arguments are limited to {self.items:,})"
                )

    def value(self, value: Any) -> Any:
        """``value``, after checking that it is within the bounds (the check after an operation).

        What operations make is also counted: a template may keep what it makes (in a list),
        so all it makes together is bounded too."""
        if isinstance(value, (str, bytes)):
            self.size(len(value), "a string")
            self.made(len(value))
        elif isinstance(value, (list, tuple, dict)):
            self.many(len(value), f"a {type(value).__name__}")
            self.made(8 * len(value))
        elif type(value) is int and value.bit_length() > self.bits:
            raise _Exceeded(
                "size", f"made an integer of {value.bit_length():,} bits (the limit is {self.bits:,})"
            )
        return value

    def made(self, chars: int) -> None:
        self.budget -= chars
        if self.budget < 0:
            raise _Exceeded("size", f"made more than {_MADE_PER_CHAR * self.chars:,} characters of values")


def _count(number: float) -> str:
    return f"{number:,.0f}" if number < 1e15 else f"{number:.2e}"


_active: ContextVar[_Guard | None] = ContextVar("chat_template_guard", default=None)


def _guard() -> _Guard:
    guard = _active.get()
    if guard is None:  # outside a render (nothing in this package does that): sizes still bounded
        guard = _Guard(DEFAULT_LIMITS, 0)
    return guard


def check_size(chars: float, what: str) -> None:
    """For helpers a template calls (``strftime_now``): refuse to make ``chars`` characters."""
    _guard().size(chars, what)


# --- sizes of values ------------------------------------------------------------------------


def _measure(value: Any, budget: float = math.inf, strict: bool = True) -> int:
    """About ``len(str(value))``, computed without building the text (a list that appears
    twice counts twice, as in the text). Stops adding once past ``budget``."""
    if isinstance(value, str):
        return len(value)
    return _walk(value, {}, 0, budget, strict)[0]


def _input_chars(values: dict[str, Any]) -> int:
    """About how many characters the data given to a template has (its bounds grow with it)."""
    try:
        return len(json.dumps(values, default=repr))
    except (TypeError, ValueError, RecursionError):  # a list inside itself, nested too deep, ...
        return _measure(values, strict=False)


def _shape(value: Any) -> tuple[int, int, int]:
    """``(about len(str(value)), values in it, nesting depth)``."""
    return _walk(value, {}, 0, math.inf, True)


def _walk(
    value: Any, memo: dict[int, tuple[int, int, int]], depth: int, budget: float, strict: bool
) -> tuple[int, int, int]:
    if isinstance(value, (str, bytes)):
        return len(value) + 2, 1, 0
    if value is None or isinstance(value, (bool, float)):
        return 24, 1, 0
    if isinstance(value, int):
        return value.bit_length() // 3 + 2, 1, 0
    if isinstance(value, Namespace):
        value = object.__getattribute__(value, "_Namespace__attrs")
    elif not isinstance(value, (list, tuple, dict)):
        if not (isinstance(value, Sized) and isinstance(value, Iterable)) or isinstance(value, Macro):
            return 64, 1, 0  # a macro, an undefined value, a generator, a loop: short texts
        value = list(value)  # a set, a dict's items
    key = id(value)
    if key in memo:
        return memo[key]
    if depth >= _MAX_DEPTH:
        if strict:
            raise _Exceeded("size", f"turned a value nested more than {_MAX_DEPTH} levels deep into text")
        return 2, 1, 0
    memo[key] = (5, 1, 0)  # a list inside itself prints as [...]
    size, count, deepest = 2, 1, 0
    items = [part for pair in value.items() for part in pair] if isinstance(value, dict) else value
    for index, item in enumerate(items):
        item_size, item_count, item_depth = _walk(item, memo, depth + 1, budget, strict)
        size += item_size + 2
        count += item_count
        deepest = max(deepest, item_depth)
        if size > budget:
            break
        if strict and not index & 4095:
            _guard().tick()
    memo[key] = (size, count, deepest + 1)
    return memo[key]


def _number(value: Any) -> int:
    """A width-like argument as a number of characters (a string counts by its length)."""
    if isinstance(value, (str, bytes)):
        return len(value)
    return max(int(value), 0) if isinstance(value, (int, float)) and math.isfinite(value) else 0


def _materialized(value: Any, guard: _Guard) -> Any:
    """An iterator as a list (at most the item limit), so that its size can be known."""
    if isinstance(value, Iterator):
        items = []
        for item in value:
            items.append(item)
            guard.many(len(items), "a list")
        return items
    return value


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")
_DIGITS = re.compile(r"\d+")


def _digits(text: str) -> int:
    return int(text) if len(text) <= 15 else 10**15


def _printf_size(fmt: Any, args: Any) -> float:
    """Characters ``fmt % args`` may make: every width and precision counts."""
    if not isinstance(fmt, str):
        return _measure(fmt)
    values = (
        list(args.values()) if isinstance(args, dict) else list(args) if isinstance(args, tuple) else [args]
    )
    biggest = max((_measure(v) for v in values), default=0)
    star = max((abs(v) for v in values if type(v) is int), default=0)
    total: float = len(fmt)
    for width, precision in _PRINTF_SPEC.findall(fmt):
        total += biggest
        for number in (width, precision):
            total += star if number == "*" else _digits(number) if number else 0
    return total


def _format_size(fmt: Any, args: tuple[Any, ...], kwargs: Any) -> float:
    """Characters ``fmt.format(*args, **kwargs)`` may make: every field and width counts."""
    if not isinstance(fmt, str) or not isinstance(kwargs, dict):
        return 0
    values = [*args, *kwargs.values()]
    biggest = max((_measure(v) for v in values), default=0)
    star = max((abs(v) for v in values if type(v) is int), default=0)
    total: float = len(fmt)
    for _literal, field, spec, _conversion in Formatter().parse(fmt):
        if field is None:
            continue
        total += (
            biggest
            + sum(_digits(n) for n in _DIGITS.findall(spec or ""))
            + (star if "{" in (spec or "") else 0)
        )
    return total


def _occurrences(text: Any, old: Any, count: Any) -> int:
    found = text.count(old) if old else len(text) + 1
    return min(found, count) if type(count) is int and count >= 0 else found


# Characters a method of a string (or bytes) may make, from its arguments.
_TEXT_METHODS: dict[str, Callable[..., float]] = {
    "center": lambda s, width, *_: max(len(s), _number(width)),
    "ljust": lambda s, width, *_: max(len(s), _number(width)),
    "rjust": lambda s, width, *_: max(len(s), _number(width)),
    "zfill": lambda s, width: max(len(s), _number(width)),
    "expandtabs": lambda s, tabsize=8: (
        len(s) + s.count("\t" if isinstance(s, str) else b"\t") * _number(tabsize)
    ),
    "replace": lambda s, old, new, count=-1: len(s) + _occurrences(s, old, count) * len(new),
    "join": lambda s, items: _measure(items) + len(s) * len(items),
    "format": lambda s, *args, **kwargs: _format_size(s, args, kwargs),
    "format_map": lambda s, mapping: _format_size(s, (), mapping),
    "translate": lambda s, table, *_: (
        len(s) * (1 + max((_measure(v) for v in table.values()), default=0) if isinstance(table, dict) else 1)
    ),
}


def _text_size(value: Any, *_: Any, **__: Any) -> float:
    return len(value) if isinstance(value, str) else _measure(value)


def _json_size(
    value: Any, ensure_ascii: bool = False, indent: Any = None, separators: Any = None, **_: Any
) -> float:
    """Characters ``tojson`` may make: escapes, separators and indentation (one line per value
    at most, indented by the depth)."""
    size, count, depth = _shape(value)
    extra = sum(_number(s) for s in separators) if isinstance(separators, (list, tuple)) else 2
    return (6 if ensure_ascii else 2) * size + count * (extra + _number(indent) * depth)


def _indent_size(s: Any, width: Any = 4, *_: Any, **__: Any) -> float:
    lines = s.count("\n") + 1 if isinstance(s, str) else _measure(s)
    return _measure(s) + lines * _number(width)


_TEXT_FILTERS: tuple[str, ...] = ("string", "upper", "lower", "title", "capitalize", "trim", "striptags")
_TEXT_FILTERS += ("escape", "e", "forceescape", "safe", "wordcount", "urlize", "urlencode", "xmlattr")

# Characters a filter may make, from its arguments (the filters that build text).
_FILTER_SIZES: dict[str, Callable[..., float]] = {
    **dict.fromkeys(
        _TEXT_FILTERS,
        _text_size,
    ),
    "center": lambda value, width=80: max(_measure(value), _number(width)),
    "indent": _indent_size,
    "wordwrap": lambda s, width=79, break_long_words=True, wrapstring=None, *_, **__: (
        _measure(s)
        + (_measure(s) // max(_number(width), 1) + 1)
        * _number(wrapstring if wrapstring is not None else "\n")
    ),
    "replace": lambda s, old, new, count=None: (
        len(s) + _occurrences(s, old, count) * len(new)
        if isinstance(s, str) and isinstance(old, str) and isinstance(new, str)
        else _measure(s) * (1 + _measure(new))
    ),
    "join": lambda value, d="", attribute=None: _measure(value) + _number(d) * len(value),
    "format": lambda value, *args, **kwargs: _printf_size(value, kwargs or args),
    "truncate": lambda s, length=255, killwords=False, end="...", *_, **__: _measure(s) + _number(end),
    "tojson": _json_size,
    "pprint": lambda value, *_: _json_size(value, indent=1),
    "batch": lambda value, linecount, *_: 4 * (len(value) + _number(linecount)),
    "slice": lambda value, slices, *_: 4 * (len(value) + _number(slices)),
    "sum": lambda iterable, attribute=None, start=0: (
        _measure(iterable) + _measure(start) if isinstance(start, (str, list, tuple)) else 0
    ),
}


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (a Jinja filter) with the deadline, its size estimate and the result checked."""
    start = 1 if _PassArg.from_obj(function) is not None else 0
    estimate = _FILTER_SIZES.get(name)
    materialize = name in ("join", "sum")  # they consume an iterator: make it a list to measure it
    what = f"the {name} filter"

    @functools.wraps(function)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        guard = _guard()
        guard.tick()
        if estimate is not None and len(args) > start:
            if materialize:
                args = (*args[:start], _materialized(args[start], guard), *args[start + 1 :])
            try:
                chars = estimate(*args[start:], **kwargs)
            except (TypeError, ValueError, AttributeError):
                chars = 0  # arguments the filter refuses: it raises itself
            guard.size(chars, what)
        return guard.value(function(*args, **kwargs))

    return bounded


# --- the environment ------------------------------------------------------------------------


class _Loop:
    """An iterable that checks the deadline at every step (what ``{% for %}`` iterates)."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        step = _guard().step
        for item in self._items:
            step()
            yield item


class _BoundedCodeGenerator(CodeGenerator):
    """Compiles every ``for`` loop over :meth:`BoundedSandbox.bounded_loop` and every ``~``
    concatenation through :meth:`BoundedSandbox.bounded_concat`."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        bounded = nodes.Call(nodes.EnvironmentAttribute("bounded_loop"), [node.iter], [], None, None)
        bounded.set_lineno(node.lineno)
        fields = (node.target, bounded, node.body, node.else_, node.test, node.recursive)
        super().visit_For(nodes.For(*fields, lineno=node.lineno), frame)

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise _Exceeded(
            "size", f"asked for a range of {_count(len(numbers))} numbers (the limit is {MAX_RANGE:,})"
        )
    return numbers


def _bounded_lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    check_size(_number(n) * _number(max) * 12, "lipsum()")
    return generate_lorem_ipsum(n, html, min, max)


def _count_output(value: Any) -> Any:
    """Jinja's ``finalize``: each ``{{ ... }}`` output (in macros and blocks too) is counted."""
    guard = _guard()
    guard.tick()
    guard.output -= len(value) if isinstance(value, str) else _measure(value, guard.output)
    if guard.output < 0:
        raise _Exceeded("size", f"wrote more than {guard.chars:,} characters")
    return value


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox with time and size bounds (see the module docstring).

    Lists may be changed with ``append`` and ``pop`` (real templates build lists, Kimi K2's
    for one); the caller gives a template only copies of its data.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _BoundedCodeGenerator

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_count_output, **options)
        self.globals["range"] = _bounded_range
        self.globals["lipsum"] = _bounded_lipsum
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}

    def add_filter(self, name: str, function: Callable[..., Any]) -> None:
        """Register filter ``name``, bounded like the built-in ones."""
        self.filters[name] = _bounded_filter(name, function)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if isinstance(obj, list) and attr in ("append", "pop"):
            return True
        return bool(super().is_safe_attribute(obj, attr, value))

    # --- hooks of the compiled template -------------------------------------------------

    def bounded_loop(self, items: Any) -> _Loop:
        """What a ``for`` loop iterates: ``items``, checking the deadline at every step."""
        return _Loop(items)

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        """``a ~ b ~ ...``, refused before it is built when it would be too long."""
        guard = _guard()
        guard.size(sum(len(p) if isinstance(p, str) else _measure(p) for p in parts), "a string")
        return guard.value("".join(map(str, parts)))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        guard = _guard()
        if operator == "+":
            if isinstance(left, str) and isinstance(right, str):  # the common case, made fast
                guard.size(len(left) + len(right), "a string")
                guard.made(len(left) + len(right))
                return left + right
            if isinstance(left, (list, tuple)) and isinstance(right, type(left)):
                guard.many(len(left) + len(right), "a list")
        elif operator == "*":
            _check_product(guard, left, right)
        elif operator == "**":
            _check_power(guard, left, right)
        elif operator == "%" and isinstance(left, str):
            guard.size(_printf_size(left, right), "a %-formatted string")
        return guard.value(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        guard = _guard()
        guard.tick()
        if isinstance(__obj, LoopContext) and args:  # loop(children) of a recursive loop
            args = (_Loop(args[0]), *args[1:])
        elif not isinstance(__obj, Macro) and __obj is not _bounded_range:
            args = _check_call(guard, __obj, args, kwargs)
        return guard.value(super().call(__context, __obj, *args, **kwargs))


def _check_product(guard: _Guard, left: Any, right: Any) -> None:
    if type(left) is int and isinstance(right, (str, bytes, list, tuple)):
        left, right = right, left
    if isinstance(left, (str, bytes, list, tuple)) and type(right) is int:
        if isinstance(left, (str, bytes)):
            guard.size(len(left) * max(right, 0), "a repeated string")
        elif len(left) * max(right, 0) > guard.items:
            raise _Exceeded(
                "size",
                f"would repeat a list to {_count(len(left) * right)} items (the limit is {guard.items:,})",
            )
    elif type(left) is int and type(right) is int and left.bit_length() + right.bit_length() > guard.bits + 1:
        raise _Exceeded("size", f"would multiply to an integer of over {guard.bits:,} bits")


def _check_power(guard: _Guard, base: Any, exponent: Any) -> None:
    if type(base) is int and type(exponent) is int and exponent > 0 and abs(base) > 1:
        bits = exponent * math.log2(abs(base))
        if bits > guard.bits:
            raise _Exceeded(
                "size",
                f"would raise to an integer of about {_count(bits)} bits (the limit is {guard.bits:,})",
            )


def _check_call(
    guard: _Guard, function: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse a call that would make too large a value; the arguments to call it with."""
    plain = {k: v for k, v in kwargs.items() if k not in ("_loop_vars", "_block_vars")}
    name = getattr(function, "__name__", "")
    what = f"{name}()" if name else "a function"
    guard.ints(args, plain, what)
    owner = getattr(getattr(function, "__wrapped__", function), "__self__", None)  # str.format is wrapped
    if isinstance(owner, (str, bytes)) and name in _TEXT_METHODS:
        if name == "join" and args:
            args = (_materialized(args[0], guard), *args[1:])
        try:
            chars = _TEXT_METHODS[name](owner, *args, **plain)
        except (TypeError, ValueError, AttributeError):
            chars = 0  # arguments the method refuses: it raises itself
        guard.size(chars, what)
    elif isinstance(owner, list) and name == "append":
        guard.many(len(owner) + 1, "a list (by append)")
        guard.made(8)
    return args


# --- rendering ----------------------------------------------------------------------------


@contextlib.contextmanager
def typed_errors(source: str) -> Iterator[None]:
    """Turn whatever a template raises into :class:`ChatTemplateError` (a tripped bound into
    :class:`ChatTemplateLimitError`), naming ``source``."""
    try:
        yield
    except ChatTemplateError:
        raise
    except _Exceeded as exceeded:
        raise limit_error(source, exceeded.limit, exceeded.detail) from None
    except RecursionError:
        detail = "recursed too deep (a macro or loop calling itself, or expressions nested too deep)"
        raise limit_error(source, "recursion", detail) from None
    except MemoryError:
        raise limit_error(source, "memory", "ran out of memory") from None
    except TemplateError as error:
        raise template_error(source, str(error)) from error
    except Exception as error:  # a type error, a division by zero, ... in the template's code
        raise template_error(source, f"{type(error).__name__}: {error}") from error


def template_error(source: str, reason: str) -> ChatTemplateError:
    """The error of a template that fails (or refuses the conversation)."""
    return ChatTemplateError(f"{reason} (chat template from {source})", source=source, reason=reason)


def limit_error(source: str, limit: str, detail: str) -> ChatTemplateLimitError:
    """The error of a template that went past bound ``limit``."""
    return ChatTemplateLimitError(
        f"The chat template from {source} {detail} and was stopped. A model's chat template is "
        "untrusted code, so its time and memory are bounded; the templates models ship stay far "
        "below the bounds. Use a model file or server with a sound template, or lay the "
        "conversation out with a registered chat format (chat_format=...).",
        source=source,
        reason=detail,
        limit=limit,
    )


@contextlib.contextmanager
def bounded(limits: ChatTemplateLimits = DEFAULT_LIMITS, input_chars: int = 0) -> Iterator[None]:
    """Run the block (a compilation or a render) within ``limits``."""
    token = _active.set(_Guard(limits, input_chars))
    try:
        yield
    finally:
        _active.reset(token)


def render_bounded(template: Any, values: dict[str, Any], limits: ChatTemplateLimits = DEFAULT_LIMITS) -> str:
    """Render a template of a :class:`BoundedSandbox` over ``values`` within ``limits``.

    Raises the template's own exceptions and ``_Exceeded``: call it inside :func:`typed_errors`.
    """
    with bounded(limits, _input_chars(values)):
        guard = _guard()
        pieces: list[str] = []
        total = 0
        for piece in template.generate(**values):
            total += len(piece)
            if total > guard.chars:
                raise _Exceeded("size", f"wrote more than {guard.chars:,} characters")
            guard.tick()
            pieces.append(piece)
        return "".join(pieces)
