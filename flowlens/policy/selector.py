"""Calico selectors: the tokenizer, parser, canonical form and matching, plus Kubernetes LabelSelectors.

This module owns the selector language exactly as Calico's ``libcalico-go/lib/selector`` implements
it (tokenizer rules, precedence, ``Selector.String()`` canonical form, evaluation) and the
conversion Calico applies to a Kubernetes ``LabelSelector``. Everything that matches labels in
flowlens goes through it.

A selector is an immutable tree of frozen dataclasses (``Eq``, ``In``, ``Not``, ``And`` ...), all
subclasses of :class:`Selector`. Two selectors are equal when their canonical forms are equal.
Each node is compiled once, at construction, into a closure, so ``matches`` does no per-call
allocation: selectors are matched millions of times during replay.

Every node that can be constructed prints to a canonical string that parses back to an equal
selector: ``And``/``Or`` need at least two operands, ``Not(Not(x))`` is refused (use
:func:`negate`), set values are sorted and de-duplicated, and a value cannot contain both quote
characters (Calico strings have no escapes).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flowlens.errors import SelectorError

__all__ = [
    "MAX_LABEL_LENGTH",
    "NAMESPACE_LABEL",
    "NAMESPACE_LABEL_PREFIX",
    "ORCHESTRATOR_LABEL",
    "SERVICE_ACCOUNT_LABEL_PREFIX",
    "All",
    "And",
    "Contains",
    "EndsWith",
    "Eq",
    "Global",
    "Has",
    "In",
    "Ne",
    "Not",
    "NotIn",
    "Or",
    "Selector",
    "SelectorSyntaxError",
    "StartsWith",
    "and_",
    "is_valid_label",
    "label_selector_to_calico",
    "negate",
    "or_",
    "parse_selector",
    "selector_for_labels",
    "to_namespace_scope",
]

Matcher = Callable[[Mapping[str, str]], bool]

MAX_LABEL_LENGTH = 512
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
NAMESPACE_LABEL = "projectcalico.org/namespace"
NAMESPACE_LABEL_PREFIX = "pcns."
SERVICE_ACCOUNT_LABEL_PREFIX = "pcsa."

_LABEL_CHARS = re.compile(r"[A-Za-z0-9_./-]*")
_LABEL_CHARSET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-")
_WS = " \t"  # newline is deliberately not whitespace, as in Calico


def is_valid_label(name: str) -> bool:
    """True when ``name`` is a label key Calico's tokenizer accepts (1..512 of ``[A-Za-z0-9_./-]``)."""
    return 0 < len(name) <= MAX_LABEL_LENGTH and _LABEL_CHARS.fullmatch(name) is not None


def _quote(value: str) -> str:
    # Calico's appendLabelOpAndQuotedString: double quotes unless the value contains one.
    return f"'{value}'" if '"' in value else f'"{value}"'


def _check_label(label: str) -> None:
    if not isinstance(label, str) or not is_valid_label(label):
        raise SelectorError(
            f"invalid label name {label!r} in a selector: a label is 1 to {MAX_LABEL_LENGTH} "
            "characters of letters, digits, '_', '.', '/' and '-'"
        )


def _check_value(value: str) -> None:
    if not isinstance(value, str):
        raise SelectorError(f"selector value {value!r} must be a string")
    if '"' in value and "'" in value:
        raise SelectorError(
            f"selector value {value!r} contains both quote characters; Calico selector strings "
            "have no escapes, so it cannot be written"
        )


# --------------------------------------------------------------------------------------------
# AST


class Selector:
    """A parsed Calico selector (the base of every AST node).

    ``str(sel)`` is Calico's canonical form; equality and hashing use it. ``sel.matches(labels)``
    evaluates the selector on a label mapping (a compiled closure; ``sel.matcher`` is the same
    function for hot loops).
    """

    _text: str
    matcher: Matcher

    def _finish(self, text: str, matcher: Matcher) -> None:
        object.__setattr__(self, "_text", text)
        object.__setattr__(self, "matcher", matcher)
        # Shadow the method with the closure itself: one Python call per match instead of two.
        object.__setattr__(self, "matches", matcher)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """True when the selector selects an endpoint with these labels."""
        return self.matcher(labels)

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        return f"parse_selector({self._text!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return self._text == other._text

    def __hash__(self) -> int:
        return hash(self._text)

    def __reduce__(self) -> tuple[Any, ...]:
        # The compiled closures cannot be pickled; the canonical form rebuilds an equal selector.
        return (parse_selector, (self._text,))

    def children(self) -> tuple[Selector, ...]:
        """The direct sub-selectors (empty for a leaf)."""
        return ()

    def walk(self) -> Iterator[Selector]:
        """This node and every node below it, depth first."""
        yield self
        for child in self.children():
            yield from child.walk()

    @property
    def is_global(self) -> bool:
        """True when the whole selector is ``global()`` (a namespaceSelector scope, §4.4)."""
        return isinstance(self, Global)

    @property
    def has_global(self) -> bool:
        """True when ``global()`` appears anywhere in the selector."""
        return any(isinstance(node, Global) for node in self.walk())

    @property
    def is_all(self) -> bool:
        """True when the whole selector is ``all()``."""
        return isinstance(self, All)

    @property
    def label_keys(self) -> frozenset[str]:
        """Every label key the selector looks at."""
        return frozenset(node.label for node in self.walk() if isinstance(node, _LabelNode))

    def map_labels(self, fn: Callable[[str], str]) -> Selector:
        """A copy with every label key replaced by ``fn(key)`` (Calico's PrefixVisitor generalised)."""
        return self

    def prefixed(self, prefix: str) -> Selector:
        """A copy with ``prefix`` prepended to every label key (e.g. ``pcns.`` for namespaces)."""
        return self.map_labels(lambda key: prefix + key)

    def replace(self, fn: Callable[[Selector], Selector | None]) -> Selector:
        """A copy where each node for which ``fn`` returns a selector is replaced by it.

        Children are rebuilt first; ``Not`` of a ``Not`` produced by a replacement cancels, as
        re-parsing the printed form would.
        """
        return fn(self) or self


@dataclass(frozen=True, eq=False, repr=False)
class All(Selector):
    """``all()``: selects everything."""

    def __post_init__(self) -> None:
        self._finish("all()", _true)


@dataclass(frozen=True, eq=False, repr=False)
class Global(Selector):
    """``global()``: true on any labels; inside a namespaceSelector it means "non-namespaced"."""

    def __post_init__(self) -> None:
        self._finish("global()", _true)


def _true(labels: Mapping[str, str]) -> bool:
    return True


class _LabelNode(Selector):
    """A node that tests one label key."""

    label: str


@dataclass(frozen=True, eq=False, repr=False)
class Has(_LabelNode):
    """``has(k)``: the key is present, with any value (including the empty string)."""

    label: str

    def __post_init__(self) -> None:
        _check_label(self.label)
        key = self.label
        self._finish(f"has({key})", lambda labels: key in labels)

    def map_labels(self, fn: Callable[[str], str]) -> Selector:
        return Has(fn(self.label))


@dataclass(frozen=True, eq=False, repr=False)
class _ValueNode(_LabelNode):
    label: str
    value: str

    _op = ""

    def __post_init__(self) -> None:
        _check_label(self.label)
        _check_value(self.value)
        self._finish(f"{self.label} {self._op} {_quote(self.value)}", self._compile())

    def _compile(self) -> Matcher:
        raise NotImplementedError

    def map_labels(self, fn: Callable[[str], str]) -> Selector:
        return type(self)(fn(self.label), self.value)


@dataclass(frozen=True, eq=False, repr=False)
class Eq(_ValueNode):
    """``k == "v"``: the key is present and its value is exactly v."""

    _op = "=="

    def _compile(self) -> Matcher:
        key, value = self.label, self.value
        # labels.get returns None for an absent key, and None never equals a str.
        return lambda labels: labels.get(key) == value


@dataclass(frozen=True, eq=False, repr=False)
class Ne(_ValueNode):
    """``k != "v"``: the key is absent, or its value is not v."""

    _op = "!="

    def _compile(self) -> Matcher:
        key, value = self.label, self.value
        # An absent key gives None, which differs from every str: '!=' is true.
        return lambda labels: labels.get(key) != value


@dataclass(frozen=True, eq=False, repr=False)
class Contains(_ValueNode):
    """``k contains "s"``: the key is present and its value contains s."""

    _op = "contains"

    def _compile(self) -> Matcher:
        key, value = self.label, self.value

        def match(labels: Mapping[str, str]) -> bool:
            actual = labels.get(key)
            return actual is not None and value in actual

        return match


@dataclass(frozen=True, eq=False, repr=False)
class StartsWith(_ValueNode):
    """``k starts with "s"``: the key is present and its value starts with s."""

    _op = "starts with"

    def _compile(self) -> Matcher:
        key, value = self.label, self.value

        def match(labels: Mapping[str, str]) -> bool:
            actual = labels.get(key)
            return actual is not None and actual.startswith(value)

        return match


@dataclass(frozen=True, eq=False, repr=False)
class EndsWith(_ValueNode):
    """``k ends with "s"``: the key is present and its value ends with s."""

    _op = "ends with"

    def _compile(self) -> Matcher:
        key, value = self.label, self.value

        def match(labels: Mapping[str, str]) -> bool:
            actual = labels.get(key)
            return actual is not None and actual.endswith(value)

        return match


@dataclass(frozen=True, eq=False, repr=False)
class _SetNode(_LabelNode):
    label: str
    values: tuple[str, ...]

    _op = ""

    def __post_init__(self) -> None:
        _check_label(self.label)
        if isinstance(self.values, str):
            raise SelectorError(f"the values of an '{self._op}' set must be a collection of strings")
        for value in self.values:
            _check_value(value)
        # Calico's StringSet: sorted (byte order == code point order for UTF-8) and de-duplicated.
        values = tuple(sorted(set(self.values)))
        object.__setattr__(self, "values", values)
        body = ", ".join(_quote(value) for value in values)
        self._finish(f"{self.label} {self._op} {{{body}}}", self._compile(frozenset(values)))

    def _compile(self, values: frozenset[str]) -> Matcher:
        raise NotImplementedError

    def map_labels(self, fn: Callable[[str], str]) -> Selector:
        return type(self)(fn(self.label), self.values)


@dataclass(frozen=True, eq=False, repr=False)
class In(_SetNode):
    """``k in {"a", "b"}``: the key is present and its value is in the set."""

    _op = "in"

    def _compile(self, values: frozenset[str]) -> Matcher:
        key = self.label
        # An absent key gives None, which is never in a set of strings.
        return lambda labels: labels.get(key) in values


@dataclass(frozen=True, eq=False, repr=False)
class NotIn(_SetNode):
    """``k not in {"a", "b"}``: the key is absent, or its value is not in the set."""

    _op = "not in"

    def _compile(self, values: frozenset[str]) -> Matcher:
        key = self.label
        return lambda labels: labels.get(key) not in values


@dataclass(frozen=True, eq=False, repr=False)
class Not(Selector):
    """``!x``: the operand does not match."""

    operand: Selector

    def __post_init__(self) -> None:
        if not isinstance(self.operand, Selector):
            raise SelectorError(f"the operand of '!' must be a selector, not {self.operand!r}")
        if isinstance(self.operand, Not):
            # '!!x' parses back to x, so a double negation has no canonical form of its own.
            raise SelectorError("Not(Not(x)) is not a canonical selector; use negate() to cancel it")
        inner = self.operand.matcher
        self._finish(f"!{self.operand}", lambda labels: not inner(labels))

    def children(self) -> tuple[Selector, ...]:
        return (self.operand,)

    def map_labels(self, fn: Callable[[str], str]) -> Selector:
        return Not(self.operand.map_labels(fn))

    def replace(self, fn: Callable[[Selector], Selector | None]) -> Selector:
        rebuilt = negate(self.operand.replace(fn))
        return fn(rebuilt) or rebuilt


@dataclass(frozen=True, eq=False, repr=False)
class _GroupNode(Selector):
    operands: tuple[Selector, ...]

    _op = ""

    def __post_init__(self) -> None:
        operands = tuple(self.operands)
        object.__setattr__(self, "operands", operands)
        if len(operands) < 2:
            raise SelectorError(
                f"a '{self._op}' group needs at least two operands (use and_()/or_() to build one)"
            )
        for operand in operands:
            if not isinstance(operand, Selector):
                raise SelectorError(f"the operands of '{self._op}' must be selectors, not {operand!r}")
        text = "(" + f" {self._op} ".join(str(operand) for operand in operands) + ")"
        self._finish(text, self._compile(tuple(operand.matcher for operand in operands)))

    def _compile(self, matchers: tuple[Matcher, ...]) -> Matcher:
        raise NotImplementedError

    def children(self) -> tuple[Selector, ...]:
        return self.operands

    def map_labels(self, fn: Callable[[str], str]) -> Selector:
        return type(self)(tuple(operand.map_labels(fn) for operand in self.operands))

    def replace(self, fn: Callable[[Selector], Selector | None]) -> Selector:
        rebuilt = type(self)(tuple(operand.replace(fn) for operand in self.operands))
        return fn(rebuilt) or rebuilt


@dataclass(frozen=True, eq=False, repr=False)
class And(_GroupNode):
    """``(a && b && ...)``: every operand matches."""

    _op = "&&"

    def _compile(self, matchers: tuple[Matcher, ...]) -> Matcher:
        if len(matchers) == 2:
            first, second = matchers
            return lambda labels: first(labels) and second(labels)

        def match(labels: Mapping[str, str]) -> bool:
            # A plain loop: all() with a generator allocates on every call.
            for matcher in matchers:  # noqa: SIM110
                if not matcher(labels):
                    return False
            return True

        return match


@dataclass(frozen=True, eq=False, repr=False)
class Or(_GroupNode):
    """``(a || b || ...)``: at least one operand matches."""

    _op = "||"

    def _compile(self, matchers: tuple[Matcher, ...]) -> Matcher:
        if len(matchers) == 2:
            first, second = matchers
            return lambda labels: first(labels) or second(labels)

        def match(labels: Mapping[str, str]) -> bool:
            for matcher in matchers:  # noqa: SIM110
                if matcher(labels):
                    return True
            return False

        return match


# --------------------------------------------------------------------------------------------
# Combinators


def negate(selector: Selector) -> Selector:
    """``!selector``, cancelling a double negation as Calico's parser does."""
    return selector.operand if isinstance(selector, Not) else Not(selector)


def and_(*selectors: Selector) -> Selector:
    """The conjunction, as parsing ``(a) && (b)`` gives it: no operands -> ``all()``, one -> itself.

    Operands are not flattened, so ``and_(and_(a, b), c)`` prints ``((a && b) && c)`` exactly as
    Calico prints the selectors it combines by string.
    """
    if not selectors:
        return All()
    if len(selectors) == 1:
        return selectors[0]
    return And(tuple(selectors))


def or_(*selectors: Selector) -> Selector:
    """The disjunction: one operand -> itself; it needs at least one."""
    if not selectors:
        raise SelectorError("or_() needs at least one selector")
    if len(selectors) == 1:
        return selectors[0]
    return Or(tuple(selectors))


def selector_for_labels(labels: Mapping[str, str]) -> Selector:
    """``k1 == "v1" && k2 == "v2" ...`` sorted by key: selects endpoints carrying all these labels.

    An empty mapping gives ``all()``.
    """
    return and_(*(Eq(key, labels[key]) for key in sorted(labels)))


def to_namespace_scope(namespace_selector: Selector) -> Selector:
    """Turn a rule's ``namespaceSelector`` into the endpoint selector Felix uses (reference §4.4).

    Label keys get the ``pcns.`` prefix (namespace labels reach workloads through the ``kns.<ns>``
    profile), ``all()`` becomes ``has(projectcalico.org/namespace)`` (any namespaced endpoint) and
    ``global()`` becomes ``!has(projectcalico.org/namespace)`` (host endpoints and global network
    sets). Calico does the last two by string replacement on the canonical form; this does it on
    the tree, which differs only for a quoted value that contains ``all()`` or ``global()``.
    """
    has_namespace = Has(NAMESPACE_LABEL)

    def scope(node: Selector) -> Selector | None:
        if isinstance(node, All):
            return has_namespace
        if isinstance(node, Global):
            return Not(has_namespace)
        return None

    return namespace_selector.prefixed(NAMESPACE_LABEL_PREFIX).replace(scope)


# --------------------------------------------------------------------------------------------
# Tokenizer and parser (a port of tokenizer.go and parser.go that keeps positions for errors)


class SelectorSyntaxError(SelectorError):
    """A selector that does not parse. ``position`` is the 0-based column of the problem."""

    def __init__(self, text: str, position: int, problem: str) -> None:
        self.text = text
        self.position = position
        self.problem = problem
        super().__init__(_describe(text, position, problem))


def _describe(text: str, position: int, problem: str) -> str:
    start = max(0, position - 40)
    end = min(len(text), position + 40)
    # Newlines and tabs would break the caret's alignment; show them as single characters.
    excerpt = text[start:end].replace("\n", "⏎").replace("\t", "→").replace("\r", "␍")
    prefix = "…" if start > 0 else ""
    suffix = "…" if end < len(text) else ""
    caret = " " * (len(prefix) + position - start) + "^"
    return (
        f"invalid selector at column {position}: {problem}\n"
        f"  {prefix}{excerpt}{suffix}\n"
        f"  {caret}\n"
        "Selector syntax: k == 'v', k != 'v', k in {'a', 'b'}, k not in {...}, has(k), "
        "k contains|starts with|ends with 's', all(), global(), !, &&, || and parentheses."
    )


# Token kinds
_LABEL = "label"
_STRING = "string"
_LBRACE = "'{'"
_RBRACE = "'}'"
_COMMA = "','"
_EQ = "'=='"
_NE = "'!='"
_IN = "'in'"
_NOT = "'!'"
_NOTIN = "'not in'"
_CONTAINS = "'contains'"
_STARTS = "'starts with'"
_ENDS = "'ends with'"
_ALL = "all()"
_HAS = "has()"
_LPAREN = "'('"
_RPAREN = "')'"
_AND = "'&&'"
_OR = "'||'"
_GLOBAL = "global()"
_EOF = "end of selector"

_VALUE_OPS: dict[str, type[_ValueNode]] = {
    _EQ: Eq,
    _NE: Ne,
    _CONTAINS: Contains,
    _STARTS: StartsWith,
    _ENDS: EndsWith,
}

_SIMPLE = {"(": _LPAREN, ")": _RPAREN, "{": _LBRACE, "}": _RBRACE, ",": _COMMA}
_PAIRS = {"=": ("==", _EQ), "&": ("&&", _AND), "|": ("||", _OR)}
_OPERATORS_HELP = "==, !=, in, not in, contains, starts with or ends with"


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    value: str
    pos: int

    def describe(self) -> str:
        if self.kind == _LABEL:
            return f"label {self.value!r}"
        if self.kind == _STRING:
            return f"string {_quote(self.value)}"
        if self.kind == _HAS:
            return f"has({self.value})"
        return self.kind


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in _WS:
        pos += 1
    return pos


def _at_word_boundary(text: str, pos: int) -> bool:
    return pos >= len(text) or text[pos] not in _LABEL_CHARSET


def _cut_words(text: str, pos: int, *words: str) -> int:
    """The position after ``words`` (spaces/tabs allowed between them), or -1."""
    cur = pos
    for index, word in enumerate(words):
        if not text.startswith(word, cur):
            return -1
        cur += len(word)
        if index < len(words) - 1:
            cur = _skip_ws(text, cur)
    return cur if _at_word_boundary(text, cur) else -1


def _cut_label(text: str, pos: int) -> int:
    end = _LABEL_CHARS.match(text, pos).end()  # type: ignore[union-attr]
    if end == pos:
        char = text[pos]
        hint = " (only spaces and tabs separate tokens)" if char in "\r\n" else ""
        raise SelectorSyntaxError(text, pos, f"unexpected character {char!r}{hint}")
    if end - pos > MAX_LABEL_LENGTH:
        raise SelectorSyntaxError(text, pos, f"label longer than {MAX_LABEL_LENGTH} characters")
    return end


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    append = tokens.append
    n = len(text)
    pos = 0
    while True:
        pos = _skip_ws(text, pos)
        if pos >= n:
            append(_Token(_EOF, "", pos))
            return tokens
        char = text[pos]
        start = pos
        if char in _SIMPLE:
            append(_Token(_SIMPLE[char], "", pos))
            pos += 1
        elif char == '"' or char == "'":
            close = text.find(char, pos + 1)
            if close < 0:
                raise SelectorSyntaxError(text, pos, f"unterminated string: no closing {char}")
            append(_Token(_STRING, text[pos + 1 : close], pos))
            pos = close + 1
        elif char == "!":
            if text.startswith("!=", pos):
                append(_Token(_NE, "", pos))
                pos += 2
            else:
                append(_Token(_NOT, "", pos))
                pos += 1
        elif char in _PAIRS:
            pair, kind = _PAIRS[char]
            if not text.startswith(pair, pos):
                raise SelectorSyntaxError(
                    text, pos, f"expected {pair!r}; a single {char!r} is not an operator"
                )
            append(_Token(kind, "", pos))
            pos += 2
        elif tokens and tokens[-1].kind == _LABEL:
            # Directly after a label only a word operator may follow (so a label may be called
            # "contains" or "in"); each needs a word boundary after it but may touch a quote/brace.
            for words, kind in (
                (("contains",), _CONTAINS),
                (("starts", "with"), _STARTS),
                (("ends", "with"), _ENDS),
                (("not", "in"), _NOTIN),
                (("in",), _IN),
            ):
                end = _cut_words(text, pos, *words)
                if end >= 0:
                    append(_Token(kind, "", pos))
                    pos = end
                    break
            else:
                raise SelectorSyntaxError(
                    text, pos, f"expected an operator after label {tokens[-1].value!r}: {_OPERATORS_HELP}"
                )
        elif text.startswith("has(", pos):
            pos = _skip_ws(text, pos + 4)
            if pos >= n or text[pos] not in _LABEL_CHARSET:
                raise SelectorSyntaxError(text, pos, "expected a label name inside has( )")
            end = _cut_label(text, pos)
            label = text[pos:end]
            pos = _skip_ws(text, end)
            if not text.startswith(")", pos):
                raise SelectorSyntaxError(text, pos, f"expected ')' to close has({label}")
            append(_Token(_HAS, label, start))
            pos += 1
        elif text.startswith("all(", pos) or text.startswith("global(", pos):
            name = "all" if char == "a" else "global"
            pos = _skip_ws(text, pos + len(name) + 1)
            if not text.startswith(")", pos):
                raise SelectorSyntaxError(
                    text, pos, f"expected ')' right after {name}(; {name}() takes no argument"
                )
            append(_Token(_ALL if name == "all" else _GLOBAL, "", start))
            pos += 1
        else:
            end = _cut_label(text, pos)
            append(_Token(_LABEL, text[pos:end], pos))
            pos = end


class _Parser:
    """Recursive descent over the tokens, the same shape as Calico's parser.go."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0

    def fail(self, token: _Token, problem: str) -> SelectorSyntaxError:
        return SelectorSyntaxError(self.text, token.pos, problem)

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.tokens[self.index]
        if token.kind != _EOF:
            self.index += 1
        return token

    def parse(self) -> Selector:
        if self.peek().kind == _EOF:
            return All()
        node = self.or_expr()
        token = self.peek()
        if token.kind != _EOF:
            if token.kind == _RPAREN:
                raise self.fail(token, "unbalanced ')': no '(' to close")
            raise self.fail(
                token, f"unexpected {token.describe()}; expected '&&', '||' or the end of the selector"
            )
        return node

    def or_expr(self) -> Selector:
        operands = [self.and_expr()]
        while self.peek().kind == _OR:
            self.take()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else Or(tuple(operands))

    def and_expr(self) -> Selector:
        operands = [self.operation()]
        while self.peek().kind == _AND:
            self.take()
            operands.append(self.operation())
        return operands[0] if len(operands) == 1 else And(tuple(operands))

    def operation(self) -> Selector:
        negated = False
        while self.peek().kind == _NOT:
            self.take()
            negated = not negated
        node = self.term()
        return Not(node) if negated else node

    def term(self) -> Selector:
        token = self.take()
        kind = token.kind
        if kind == _HAS:
            return Has(token.value)
        if kind == _ALL:
            return All()
        if kind == _GLOBAL:
            return Global()
        if kind == _LPAREN:
            node = self.or_expr()
            closing = self.take()
            if closing.kind != _RPAREN:
                raise self.fail(
                    closing,
                    f"expected ')' to close the '(' at column {token.pos}, found {closing.describe()}",
                )
            return node
        if kind == _LABEL:
            return self.label_operation(token)
        raise self.fail(
            token,
            f"unexpected {token.describe()}; expected a label, has(k), all(), global(), '(' or '!'",
        )

    def label_operation(self, label: _Token) -> Selector:
        op = self.take()
        if op.kind in _VALUE_OPS:
            value = self.take()
            if value.kind != _STRING:
                raise self.fail(value, f"expected a quoted string after {op.kind}, found {value.describe()}")
            return _VALUE_OPS[op.kind](label.value, value.value)
        if op.kind in (_IN, _NOTIN):
            brace = self.take()
            if brace.kind != _LBRACE:
                raise self.fail(
                    brace, f"expected a set like {{'a', 'b'}} after {op.kind}, found {brace.describe()}"
                )
            values: list[str] = []
            while self.peek().kind == _STRING:
                values.append(self.take().value)
                if self.peek().kind != _COMMA:
                    break
                self.take()
            after_string = self.tokens[self.index - 1].kind == _STRING
            closing = self.take()
            if closing.kind != _RBRACE:
                expected = "',' or '}'" if after_string else "a string or '}'"
                raise self.fail(closing, f"expected {expected} in the set, found {closing.describe()}")
            node_type = In if op.kind == _IN else NotIn
            return node_type(label.value, tuple(values))
        raise self.fail(op, f"expected an operator after label {label.value!r}: {_OPERATORS_HELP}")


@functools.lru_cache(maxsize=4096)
def parse_selector(text: str) -> Selector:
    """Parse a Calico selector; empty or blank text is ``all()``.

    Raises :class:`SelectorSyntaxError` (a ``SelectorError``) naming the column of the problem.
    """
    if not isinstance(text, str):
        raise SelectorError(f"a selector must be a string, not {type(text).__name__}")
    return _Parser(text, _tokenize(text)).parse()


# --------------------------------------------------------------------------------------------
# Kubernetes LabelSelector


_LABEL_SELECTOR_FIELDS = frozenset({"matchLabels", "matchExpressions"})
_EXPRESSION_FIELDS = frozenset({"key", "operator", "values"})
_K8S_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def label_selector_to_calico(
    obj: Mapping[str, Any] | None, *, orchestrator: bool = False, field: str = "selector"
) -> Selector:
    """Convert a Kubernetes ``LabelSelector`` the way Calico does (``k8sSelectorToCalico``).

    ``matchLabels`` sorted by key become ``k == "v"``, then each ``matchExpressions`` entry in
    order: In -> ``k in {...}``, NotIn -> ``k not in {...}``, Exists -> ``has(k)``,
    DoesNotExist -> ``!has(k)``; all ANDed. ``None`` or ``{}`` selects everything (``all()``).
    With ``orchestrator=True`` the clause ``projectcalico.org/orchestrator == "k8s"`` comes first,
    as Calico adds it to pod selectors (it then stands alone for an empty selector).
    ``field`` is the path of the object, used in error messages.
    """
    clauses: list[Selector] = [Eq(ORCHESTRATOR_LABEL, "k8s")] if orchestrator else []
    if obj is None:
        return and_(*clauses)
    if not isinstance(obj, Mapping):
        raise SelectorError(f"{field}: a label selector must be a mapping with matchLabels/matchExpressions")
    unknown = sorted(str(key) for key in obj if key not in _LABEL_SELECTOR_FIELDS)
    if unknown:
        raise SelectorError(
            f"{field}: unknown field {unknown[0]!r} in a label selector; use matchLabels and matchExpressions"
        )
    match_labels = obj.get("matchLabels") or {}
    if not isinstance(match_labels, Mapping):
        raise SelectorError(f"{field}.matchLabels: must be a mapping of label keys to values")
    for key in sorted(match_labels, key=str):
        path = f"{field}.matchLabels.{key}"
        value = match_labels[key]
        _check_k8s_key(key, path)
        if not isinstance(value, str):
            raise SelectorError(f"{path}: label value {value!r} must be a string (quote it in YAML)")
        _check_k8s_value(value, path)
        clauses.append(Eq(key, value))
    expressions = obj.get("matchExpressions") or []
    if not isinstance(expressions, list):
        raise SelectorError(f"{field}.matchExpressions: must be a list of {{key, operator, values}}")
    for index, expression in enumerate(expressions):
        clauses.append(_convert_expression(expression, f"{field}.matchExpressions[{index}]"))
    return and_(*clauses)


def _convert_expression(expression: Any, path: str) -> Selector:
    if not isinstance(expression, Mapping):
        raise SelectorError(f"{path}: must be a mapping with key, operator and values")
    unknown = sorted(str(key) for key in expression if key not in _EXPRESSION_FIELDS)
    if unknown:
        raise SelectorError(f"{path}: unknown field {unknown[0]!r}; use key, operator and values")
    key = expression.get("key")
    if key is None:
        raise SelectorError(f"{path}.key: required")
    _check_k8s_key(key, f"{path}.key")
    operator = expression.get("operator")
    if operator not in _K8S_OPERATORS:
        raise SelectorError(
            f"{path}.operator: unsupported operator {operator!r}; use In, NotIn, Exists or DoesNotExist"
        )
    values = expression.get("values")
    if values is None:
        values = []
    if not isinstance(values, list):
        raise SelectorError(f"{path}.values: must be a list of strings")
    for position, value in enumerate(values):
        if not isinstance(value, str):
            raise SelectorError(f"{path}.values[{position}]: {value!r} must be a string (quote it in YAML)")
        _check_k8s_value(value, f"{path}.values[{position}]")
    if operator in ("In", "NotIn"):
        if not values:
            raise SelectorError(f"{path}.values: must be non-empty when operator is {operator}")
        return (In if operator == "In" else NotIn)(key, tuple(values))
    if values:
        raise SelectorError(f"{path}.values: must be empty when operator is {operator}")
    return Has(key) if operator == "Exists" else Not(Has(key))


def _check_k8s_key(key: Any, path: str) -> None:
    if not isinstance(key, str) or not is_valid_label(key):
        raise SelectorError(
            f"{path}: {key!r} is not a valid label key (letters, digits, '_', '.', '/' and '-')"
        )


def _check_k8s_value(value: str, path: str) -> None:
    if '"' in value and "'" in value:
        raise SelectorError(f"{path}: {value!r} is not a valid label value")
