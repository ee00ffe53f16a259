"""The selector tree: nodes, canonical form, matching and combinators.

Owns :class:`Selector` and its nodes (``Eq``, ``In``, ``Not``, ``And`` ...): an immutable tree of
frozen dataclasses, equal when their canonical forms (Calico's ``Selector.String()``) are equal.
Each node is compiled once, at construction, into a closure, so ``matches`` does no per-call
allocation: selectors are matched millions of times during replay. Every node that can be
constructed prints to a canonical string that parses back to an equal selector: ``And``/``Or``
need at least two operands, ``Not(Not(x))`` is refused (use :func:`negate`), set values are
sorted and de-duplicated, and a value cannot contain both quote characters (Calico strings have
no escapes). Also the lexical rules of labels and values, which the parser shares, and the
translation of a rule's namespaceSelector into the endpoint selector Felix evaluates
(:func:`to_namespace_scope`, rulebook L4).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flowlens.errors import SelectorError

Matcher = Callable[[Mapping[str, str]], bool]

MAX_LABEL_LENGTH = 512
ORCHESTRATOR_LABEL = "projectcalico.org/orchestrator"
NAMESPACE_LABEL = "projectcalico.org/namespace"
NAMESPACE_LABEL_PREFIX = "pcns."
SERVICE_ACCOUNT_LABEL_PREFIX = "pcsa."

LABEL_PATTERN = re.compile(r"[A-Za-z0-9_./-]*")
LABEL_CHARSET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-")
WHITESPACE = " \t"  # newline is deliberately not whitespace, as in Calico


def is_valid_label(name: str) -> bool:
    """True when ``name`` is a label key Calico's tokenizer accepts (1..512 of ``[A-Za-z0-9_./-]``)."""
    return 0 < len(name) <= MAX_LABEL_LENGTH and LABEL_PATTERN.fullmatch(name) is not None


def quote(value: str) -> str:
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
        # The compiled closures cannot be pickled; the node's fields rebuild an equal selector.
        return (type(self), tuple(getattr(self, f.name) for f in dataclasses.fields(self)))  # type: ignore[arg-type]

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
        """True when the whole selector is ``global()`` (a namespaceSelector scope, rulebook L4)."""
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
        self._finish(f"{self.label} {self._op} {quote(self.value)}", self._compile())

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
        body = ", ".join(quote(value) for value in values)
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
    """Turn a rule's ``namespaceSelector`` into the endpoint selector Felix uses (rulebook L4).

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
