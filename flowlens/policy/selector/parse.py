"""Parsing Calico selectors: a port of Calico's ``tokenizer.go`` and ``parser.go`` that keeps
positions, so that a syntax error names its column and shows it (rulebook L2).

Owns :func:`parse_selector` (memoized: the same text parses once) and
:class:`SelectorSyntaxError`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

from flowlens.errors import SelectorError
from flowlens.policy.selector.nodes import (
    LABEL_CHARSET,
    LABEL_PATTERN,
    MAX_LABEL_LENGTH,
    WHITESPACE,
    All,
    And,
    Contains,
    EndsWith,
    Eq,
    Global,
    Has,
    In,
    Ne,
    Not,
    NotIn,
    Or,
    Selector,
    StartsWith,
    quote,
)


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

_VALUE_OPS: dict[str, Callable[[str, str], Selector]] = {
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
            return f"string {quote(self.value)}"
        if self.kind == _HAS:
            return f"has({self.value})"
        return self.kind


def _skip_ws(text: str, pos: int) -> int:
    n = len(text)
    while pos < n and text[pos] in WHITESPACE:
        pos += 1
    return pos


def _at_word_boundary(text: str, pos: int) -> bool:
    return pos >= len(text) or text[pos] not in LABEL_CHARSET


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
    end = LABEL_PATTERN.match(text, pos).end()  # type: ignore[union-attr]
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
            if pos >= n or text[pos] not in LABEL_CHARSET:
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


MAX_SELECTOR_DEPTH = 64


class _Parser:
    """Recursive descent over the tokens, the same shape as Calico's parser.go."""

    def __init__(self, text: str, tokens: list[_Token]) -> None:
        self.text = text
        self.tokens = tokens
        self.index = 0
        self.depth = 0  # parentheses open

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
            # (bounded: the descent is recursive, and the nodes it builds are walked recursively)
            if self.depth >= MAX_SELECTOR_DEPTH:
                raise self.fail(token, f"parentheses nested deeper than {MAX_SELECTOR_DEPTH} levels")
            self.depth += 1
            node = self.or_expr()
            self.depth -= 1
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
