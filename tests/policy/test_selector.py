"""Calico selectors and Kubernetes LabelSelectors, tested from the documented semantics.

Sources: Calico's selector grammar, tokenizer, evaluation and canonical form (rulebook L2), the
LabelSelector conversion Calico applies to Kubernetes policies (rulebook L1) and the translation of
namespaceSelectors (rulebook L4), all in docs/policy/rulebook.md.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowlens.errors import FlowlensError, PolicyError, SelectorError
from flowlens.policy import Selector, parse_selector
from flowlens.policy.selector import (
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
    SelectorSyntaxError,
    StartsWith,
    and_,
    label_selector_to_calico,
    negate,
    or_,
    selector_for_labels,
    to_namespace_scope,
)


def canon(text: str) -> str:
    return str(parse_selector(text))


def structure(sel: Selector) -> object:
    """The exact tree shape, to check more than equality of canonical strings."""
    if isinstance(sel, And | Or):
        return (type(sel).__name__, tuple(structure(op) for op in sel.operands))
    if isinstance(sel, Not):
        return ("Not", structure(sel.operand))
    if isinstance(sel, In | NotIn):
        return (type(sel).__name__, sel.label, sel.values)
    if isinstance(sel, Eq | Ne | Contains | StartsWith | EndsWith):
        return (type(sel).__name__, sel.label, sel.value)
    if isinstance(sel, Has):
        return ("Has", sel.label)
    return type(sel).__name__


# ---------------------------------------------------------------------------------------------
# Canonical form


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
        ("", "all()"),
        ("  \t ", "all()"),
        ("all()", "all()"),
        ("all(  )", "all()"),
        ("global()", "global()"),
        ("global(\t)", "global()"),
        ("has(a)", "has(a)"),
        ("k=='v'", 'k == "v"'),
        ("k != 'v'", 'k != "v"'),
        ("k contains 's'", 'k contains "s"'),
        ("k starts with 's'", 'k starts with "s"'),
        ("k ends with 's'", 'k ends with "s"'),
        ("k in {'b', 'a'}", 'k in {"a", "b"}'),
        ("k not in {'b','a'}", 'k not in {"a", "b"}'),
        ("a in {'x', 'a', 'x'}", 'a in {"a", "x"}'),
        ("a == 'b' && c == 'd'", '(a == "b" && c == "d")'),
        ("a == 'b' || c == 'd'", '(a == "b" || c == "d")'),
        ("a == 'b' && c == 'd' && e == 'f'", '(a == "b" && c == "d" && e == "f")'),
        ("a == 'b' || c == 'd' && e == 'f'", '(a == "b" || (c == "d" && e == "f"))'),
        ("a == 'b' && c == 'd' || e == 'f'", '((a == "b" && c == "d") || e == "f")'),
        ("(a == 'b' || c == 'd') && e == 'f'", '((a == "b" || c == "d") && e == "f")'),
        ("(a == 'b' && c == 'd') && e == 'f'", '((a == "b" && c == "d") && e == "f")'),
        ("((has(a)))", "has(a)"),
        ("! has(a)", "!has(a)"),
        ("!(has(a) && has(b))", "!(has(a) && has(b))"),
        ("a == 'say \"hi\"'", "a == 'say \"hi\"'"),
        ('a == "it\'s"', 'a == "it\'s"'),
        ("a in {'x\"y', 'z'}", 'a in {\'x"y\', "z"}'),
        ("a == ''", 'a == ""'),
        ("a in {}", "a in {}"),
        ("a not in {}", "a not in {}"),
        ("a in {'x',}", 'a in {"x"}'),
        ("app.kubernetes.io/name == 'web'", 'app.kubernetes.io/name == "web"'),
    ],
)
def test_the_canonical_form_is_what_calico_prints(text: str, expected: str) -> None:
    assert canon(text) == expected


def test_set_values_sort_in_byte_order_so_upper_case_comes_first() -> None:
    assert canon("a in {'b', 'B', 'a', '_', '1'}") == 'a in {"1", "B", "_", "a", "b"}'


def test_selectors_are_equal_and_hash_alike_by_canonical_form() -> None:
    first = parse_selector("a=='x'&&has(b)")
    second = parse_selector('  a == "x"   &&   has( b )')
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1
    assert first != parse_selector("has(b) && a == 'x'")
    assert first != '(a == "x" && has(b))'


def test_a_selector_is_immutable() -> None:
    sel = parse_selector("a == 'b'")
    assert isinstance(sel, Eq)
    with pytest.raises(AttributeError):
        sel.label = "c"  # type: ignore[misc]


def test_a_selector_survives_pickling() -> None:
    sel = parse_selector("a in {'x'} && !has(b) || c starts with 'd'")
    copy = pickle.loads(pickle.dumps(sel))
    assert copy == sel
    assert copy.matches({"c": "dx"})
    assert not copy.matches({"a": "x", "b": "1"})


def test_repr_shows_the_canonical_form() -> None:
    assert repr(parse_selector("has(a)")) == "parse_selector('has(a)')"


# ---------------------------------------------------------------------------------------------
# Tokenizer rules


def test_a_word_operator_is_recognised_only_directly_after_a_label() -> None:
    sel = parse_selector('contains contains "x"')
    assert structure(sel) == ("Contains", "contains", "x")
    assert structure(parse_selector("in in {'a'}")) == ("In", "in", ("a",))
    assert structure(parse_selector("not not in {'a'}")) == ("NotIn", "not", ("a",))
    assert structure(parse_selector("has == 'x'")) == ("Eq", "has", "x")
    assert structure(parse_selector("starts starts with 'x'")) == ("StartsWith", "starts", "x")


def test_word_operators_may_touch_a_following_quote_or_brace() -> None:
    assert canon('a in{"x"}') == 'a in {"x"}'
    assert canon('label contains"v"') == 'label contains "v"'
    assert canon("a starts with'x'") == 'a starts with "x"'
    assert canon('a not in{"x"}') == 'a not in {"x"}'


def test_word_operators_need_a_word_boundary_after_them() -> None:
    for text in ['a inx {"x"}', 'a containsx "v"', 'a starts withx "v"', 'a not inn {"x"}', 'a in-{"x"}']:
        with pytest.raises(SelectorError, match="expected an operator after label 'a'"):
            parse_selector(text)


def test_multi_word_operators_allow_any_spaces_or_tabs_between_their_words() -> None:
    assert canon("a startswith 'x'") == 'a starts with "x"'
    assert canon("a endswith 'x'") == 'a ends with "x"'
    assert canon("a notin {'x'}") == 'a not in {"x"}'
    assert canon("a starts \t  with 'x'") == 'a starts with "x"'
    assert canon("a not\t\tin {'x'}") == 'a not in {"x"}'


def test_a_newline_is_not_whitespace() -> None:
    for text in ["a == 'b'\n", "a ==\n'b'", "\nhas(a)", "a\tstarts\nwith 'x'"]:
        with pytest.raises(SelectorError):
            parse_selector(text)
    # Inside a string any character, a newline included, is part of the value.
    assert parse_selector("a == 'x\ny'").matches({"a": "x\ny"})


def test_not_equals_is_one_token_and_single_symbols_are_errors() -> None:
    assert canon("a!='b'") == 'a != "b"'
    for text, pos in [("a = 'b'", 2), ("has(a) & has(b)", 7), ("has(a) | has(b)", 7), ("a ! = 'b'", 4)]:
        with pytest.raises(SelectorSyntaxError) as info:
            parse_selector(text)
        assert info.value.position == pos


def test_has_all_and_global_need_the_parenthesis_right_after_the_word() -> None:
    for text in ["has (a)", "all ()", "global ()"]:
        with pytest.raises(SelectorSyntaxError) as info:
            parse_selector(text)
        assert "expected an operator after label" in info.value.problem
    assert canon("has(  a\t)") == "has(a)"


def test_consecutive_negations_cancel_in_pairs() -> None:
    assert canon("!!has(a)") == "has(a)"
    assert canon("! ! ! has(a)") == "!has(a)"
    assert canon("!!!!a == 'b'") == 'a == "b"'
    assert structure(parse_selector("!!(has(a) || has(b))")) == ("Or", (("Has", "a"), ("Has", "b")))


def test_negation_binds_to_one_operation() -> None:
    sel = parse_selector("!a == 'b'")
    assert structure(sel) == ("Not", ("Eq", "a", "b"))
    assert sel.matches({})
    assert sel.matches({"a": "c"})
    assert not sel.matches({"a": "b"})
    assert structure(parse_selector("!has(a) && has(b)")) == ("And", (("Not", ("Has", "a")), ("Has", "b")))


def test_precedence_is_negation_then_and_then_or() -> None:
    sel = parse_selector("has(a) || has(b) && !has(c)")
    assert structure(sel) == ("Or", (("Has", "a"), ("And", (("Has", "b"), ("Not", ("Has", "c"))))))
    assert sel.matches({"a": "1", "c": "1"})
    assert not sel.matches({"b": "1", "c": "1"})


def test_strings_take_either_quote_style_without_escapes() -> None:
    assert parse_selector("a == 'x\"y'").matches({"a": 'x"y'})
    assert parse_selector('a == "x\'y"').matches({"a": "x'y"})
    assert parse_selector(r"a == 'x\'").matches({"a": "x\\"})
    with pytest.raises(SelectorError, match="unterminated string"):
        parse_selector(r"a == 'x\'y'")


def test_an_empty_set_and_a_trailing_comma_are_accepted() -> None:
    assert not parse_selector("a in {}").matches({"a": ""})
    assert parse_selector("a not in {}").matches({"a": ""})
    assert parse_selector("a in {'x', 'y',}").matches({"a": "y"})
    for text in ["a in {,}", "a in {'x',,}", "a in {'x' 'y'}", "a in 'x'", "a in {'x'"]:
        with pytest.raises(SelectorError):
            parse_selector(text)


def test_labels_are_1_to_512_characters_of_the_allowed_set() -> None:
    label = "A-z_0.9/" + "x" * 504
    assert len(label) == 512
    assert parse_selector(f"has({label})").matches({label: ""})
    assert parse_selector(f"{label} == 'v'").matches({label: "v"})
    for text in [f"has({label}x)", f"{label}x == 'v'"]:
        with pytest.raises(SelectorError, match="longer than 512"):
            parse_selector(text)
    for text in ["a:b == 'c'", "é == 'c'", "has(a b)", "has()", "has(a", "a@b == 'x'"]:
        with pytest.raises(SelectorError):
            parse_selector(text)


def test_a_value_cannot_be_a_label_or_a_number() -> None:
    for text in ["a == b", "a == 1", "a in {b}", "a contains", "a =="]:
        with pytest.raises(SelectorError):
            parse_selector(text)


# ---------------------------------------------------------------------------------------------
# Semantics


@pytest.mark.parametrize(
    ("text", "present_match", "present_other", "absent"),
    [
        # (selector, labels {k: v}, labels {k: other}, labels without k)
        ("k == 'v'", True, False, False),
        ("k != 'v'", False, True, True),
        ("k in {'v', 'w'}", True, False, False),
        ("k not in {'v', 'w'}", False, True, True),
        ("k contains 'v'", True, False, False),
        ("k starts with 'v'", True, False, False),
        ("k ends with 'v'", True, False, False),
        ("has(k)", True, True, False),
        ("!has(k)", False, False, True),
        ("all()", True, True, True),
        ("global()", True, True, True),
    ],
)
def test_each_operator_treats_present_and_absent_keys_as_documented(
    text: str, present_match: bool, present_other: bool, absent: bool
) -> None:
    sel = parse_selector(text)
    assert sel.matches({"k": "v", "z": "v"}) is present_match
    assert sel.matches({"k": "x", "z": "v"}) is present_other
    assert sel.matches({"z": "v"}) is absent


def test_string_operators_test_substrings_and_the_empty_string_matches_any_present_value() -> None:
    assert parse_selector("k contains 'ont'").matches({"k": "frontend"})
    assert parse_selector("k starts with 'front'").matches({"k": "frontend"})
    assert not parse_selector("k starts with 'end'").matches({"k": "frontend"})
    assert parse_selector("k ends with 'end'").matches({"k": "frontend"})
    assert not parse_selector("k ends with 'front'").matches({"k": "frontend"})
    for op in ["contains", "starts with", "ends with"]:
        sel = parse_selector(f"k {op} ''")
        assert sel.matches({"k": ""})
        assert sel.matches({"k": "anything"})
        assert not sel.matches({})


def test_equality_is_case_sensitive_and_exact() -> None:
    sel = parse_selector("app == 'Web'")
    assert sel.matches({"app": "Web"})
    assert not sel.matches({"app": "web"})
    assert not sel.matches({"app": "Web "})
    assert not sel.matches({"App": "Web"})


def test_has_matches_an_empty_value() -> None:
    assert parse_selector("has(k)").matches({"k": ""})


def test_matching_accepts_any_mapping() -> None:
    from types import MappingProxyType

    sel = parse_selector("a == 'x' && b != 'y'")
    assert sel.matches(MappingProxyType({"a": "x"}))
    assert sel.matcher({"a": "x"})


def test_global_is_exposed_for_namespace_selector_scoping() -> None:
    assert parse_selector("global()").is_global
    assert parse_selector("global()").has_global
    assert not parse_selector("global() || has(a)").is_global
    assert parse_selector("global() || has(a)").has_global
    assert not parse_selector("all()").has_global
    assert parse_selector("").is_all
    assert parse_selector("has(a) && b == 'c' || d in {}").label_keys == {"a", "b", "d"}


def test_a_namespace_selector_becomes_the_endpoint_selector_felix_uses() -> None:
    assert str(to_namespace_scope(parse_selector("all()"))) == "has(projectcalico.org/namespace)"
    assert str(to_namespace_scope(parse_selector("global()"))) == "!has(projectcalico.org/namespace)"
    assert str(to_namespace_scope(parse_selector("env == 'prod'"))) == 'pcns.env == "prod"'
    assert str(to_namespace_scope(parse_selector("!global()"))) == "has(projectcalico.org/namespace)"
    assert (
        str(to_namespace_scope(parse_selector("global() || has(team)")))
        == "(!has(projectcalico.org/namespace) || has(pcns.team))"
    )


def test_combinators_build_what_parsing_the_combined_text_gives() -> None:
    a, b, c = parse_selector("has(a)"), parse_selector("has(b)"), parse_selector("has(c)")
    assert and_() == All()
    assert and_(a) is a
    assert str(and_(a, b)) == "(has(a) && has(b))"
    assert and_(and_(a, b), c) == parse_selector("(has(a) && has(b)) && has(c)")
    assert or_(a, and_(b, c)) == parse_selector("has(a) || has(b) && has(c)")
    assert negate(negate(a)) is a
    assert str(negate(a)) == "!has(a)"
    assert a.prefixed("pcsa.") == parse_selector("has(pcsa.a)")


def test_selector_for_labels_ands_sorted_equalities() -> None:
    sel = selector_for_labels({"tier": "db", "app": "pg"})
    assert str(sel) == '(app == "pg" && tier == "db")'
    assert sel.matches({"app": "pg", "tier": "db", "extra": "x"})
    assert not sel.matches({"app": "pg"})
    assert str(selector_for_labels({"app": "pg"})) == 'app == "pg"'
    assert selector_for_labels({}) == All()


def test_nodes_that_would_not_print_canonically_are_refused() -> None:
    with pytest.raises(SelectorError):
        Not(Not(Has("a")))
    with pytest.raises(SelectorError):
        And((Has("a"),))
    with pytest.raises(SelectorError):
        Eq("a", "x'\"y")
    with pytest.raises(SelectorError):
        Eq("a b", "x")
    with pytest.raises(SelectorError):
        In("a", "xy")  # type: ignore[arg-type]
    assert In("a", ("b", "a", "b")).values == ("a", "b")


# ---------------------------------------------------------------------------------------------
# Errors


def test_an_error_is_a_selector_error_a_policy_error_and_a_value_error() -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector("a = 'b'")
    assert isinstance(info.value, PolicyError)
    assert isinstance(info.value, FlowlensError)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("text", "position", "expected"),
    [
        ("a = 'b'", 2, "expected '=='"),
        ("a == 'b' && c", 13, "expected an operator after label 'c'"),
        ("a == b", 5, "expected a quoted string after '==', found label 'b'"),
        ("(a == 'b'", 9, "expected ')' to close the '(' at column 0"),
        ("a == 'b')", 8, "unbalanced ')'"),
        ("a == 'b' has(c)", 9, "expected '&&', '||' or the end"),
        ("a in ('x')", 5, "expected a set"),
        ("a in {'x' 'y'}", 10, "expected ',' or '}'"),
        ("has(a) && ", 10, "unexpected end of selector"),
        ("!", 1, "unexpected end of selector"),
        ("a == 'b\"", 5, "unterminated string"),
        ("has(a b)", 6, "expected ')' to close has(a"),
        ("all(x)", 4, "expected ')'"),
        ("a == 'b' ; c", 9, "unexpected character ';'"),
        ("a == 'b'\n", 8, "only spaces and tabs"),
    ],
)
def test_an_error_names_the_column_and_what_was_expected(text: str, position: int, expected: str) -> None:
    with pytest.raises(SelectorSyntaxError) as info:
        parse_selector(text)
    err = info.value
    assert err.position == position
    assert expected in err.problem
    message = str(err)
    assert f"column {position}" in message
    excerpt, caret = message.splitlines()[1:3]
    assert caret.index("^") == position + 2  # both lines are indented by two spaces
    assert len(excerpt) >= position + 2


def test_the_caret_excerpt_of_a_long_selector_is_trimmed_around_the_problem() -> None:
    text = " && ".join(f"k{i} == 'v'" for i in range(30)) + " && x = 'y'"
    with pytest.raises(SelectorSyntaxError) as info:
        parse_selector(text)
    excerpt, caret = str(info.value).splitlines()[1:3]
    assert len(excerpt) < 90
    assert excerpt[caret.index("^")] == "="


def test_a_non_string_selector_is_refused() -> None:
    with pytest.raises(SelectorError):
        parse_selector(None)


# ---------------------------------------------------------------------------------------------
# Kubernetes LabelSelector


def test_match_labels_become_sorted_equalities_then_match_expressions_in_order() -> None:
    sel = label_selector_to_calico(
        {
            "matchLabels": {"tier": "db", "app": "pg"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "NotIn", "values": ["b"]},
                {"key": "team", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"},
            ],
        }
    )
    assert str(sel) == (
        '(app == "pg" && tier == "db" && env in {"dev", "prod"} && zone not in {"b"} && has(team) && !has(legacy))'
    )
    # The same result as parsing the string Calico builds.
    assert sel == parse_selector(
        "app == 'pg' && tier == 'db' && env in { 'prod', 'dev' } && zone not in { 'b' } && has(team) && ! has(legacy)"
    )


def test_an_empty_or_missing_label_selector_selects_everything() -> None:
    objs: list[Mapping[str, Any] | None] = [
        None,
        {},
        {"matchLabels": {}},
        {"matchLabels": None, "matchExpressions": []},
    ]
    for obj in objs:
        sel = label_selector_to_calico(obj)
        assert sel == All()
        assert sel.matches({})


def test_the_orchestrator_clause_is_added_only_when_asked() -> None:
    assert str(label_selector_to_calico({}, orchestrator=True)) == 'projectcalico.org/orchestrator == "k8s"'
    sel = label_selector_to_calico({"matchLabels": {"app": "web"}}, orchestrator=True)
    assert str(sel) == '(projectcalico.org/orchestrator == "k8s" && app == "web")'
    assert not sel.matches({"app": "web"})
    assert sel.matches({"app": "web", "projectcalico.org/orchestrator": "k8s"})
    assert str(label_selector_to_calico({"matchLabels": {"app": "web"}})) == 'app == "web"'


def test_label_selector_semantics_follow_kubernetes() -> None:
    not_in = label_selector_to_calico(
        {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}
    )
    assert not_in.matches({})  # NotIn is true when the key is absent
    assert not_in.matches({"env": "dev"})
    assert not not_in.matches({"env": "prod"})
    in_ = label_selector_to_calico(
        {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}]}
    )
    assert not in_.matches({})
    assert in_.matches({"env": "prod"})
    both = label_selector_to_calico(
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "debug", "operator": "DoesNotExist"}]}
    )
    assert both.matches({"app": "web"})
    assert not both.matches({"app": "web", "debug": ""})
    assert not both.matches({"debug": "x"})


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            r"spec\.podSelector\.matchExpressions\[0\]\.operator: unsupported operator 'Equals'",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "in", "values": ["x"]}]},
            r"matchExpressions\[0\]\.operator",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": []}]},
            r"spec\.podSelector\.matchExpressions\[0\]\.values: must be non-empty when operator is In",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn"}]},
            r"matchExpressions\[0\]\.values: must be non-empty when operator is NotIn",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            r"matchExpressions\[0\]\.values: must be empty when operator is Exists",
        ),
        ({"matchExpressions": [{"operator": "Exists"}]}, r"matchExpressions\[0\]\.key: required"),
        ({"matchLabels": {"a b": "x"}}, r"spec\.podSelector\.matchLabels\.a b"),
        ({"matchLabels": {"version": 2}}, r"matchLabels\.version: label value 2 must be a string"),
        ({"matchLabel": {"a": "x"}}, r"spec\.podSelector: unknown field 'matchLabel'"),
        ({"matchLabels": ["a"]}, r"spec\.podSelector\.matchLabels: must be a mapping"),
        ({"matchExpressions": {"key": "a"}}, r"spec\.podSelector\.matchExpressions: must be a list"),
    ],
)
def test_an_invalid_label_selector_names_the_field(obj: Mapping[str, object], message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        label_selector_to_calico(obj, field="spec.podSelector")


# ---------------------------------------------------------------------------------------------
# Property tests

LABELS = st.sampled_from(["a", "b", "app", "contains", "in", "not", "has", "all", "x.y/z-1_2", "starts"])
VALUES = st.sampled_from(["", "x", "y", "web", "we", "eb", 'q"t', "it's", "a b", "é", "{", "x,y", "&&"])


def leaves() -> st.SearchStrategy[Selector]:
    return st.one_of(
        st.just(All()),
        st.just(Global()),
        st.builds(Has, LABELS),
        st.builds(Eq, LABELS, VALUES),
        st.builds(Ne, LABELS, VALUES),
        st.builds(Contains, LABELS, VALUES),
        st.builds(StartsWith, LABELS, VALUES),
        st.builds(EndsWith, LABELS, VALUES),
        st.builds(In, LABELS, st.lists(VALUES, max_size=4).map(tuple)),
        st.builds(NotIn, LABELS, st.lists(VALUES, max_size=4).map(tuple)),
    )


def extend(children: st.SearchStrategy[Selector]) -> st.SearchStrategy[Selector]:
    return st.one_of(
        children.map(negate),
        st.lists(children, min_size=2, max_size=4).map(lambda ops: And(tuple(ops))),
        st.lists(children, min_size=2, max_size=4).map(lambda ops: Or(tuple(ops))),
    )


SELECTORS = st.recursive(leaves(), extend, max_leaves=12)
LABEL_SETS = st.dictionaries(LABELS, VALUES, max_size=6)


def reference_eval(sel: Selector, labels: Mapping[str, str]) -> bool:
    """The documented semantics table, written out plainly."""
    if isinstance(sel, All | Global):
        return True
    if isinstance(sel, Has):
        return sel.label in labels
    if isinstance(sel, Not):
        return not reference_eval(sel.operand, labels)
    if isinstance(sel, And):
        return all(reference_eval(op, labels) for op in sel.operands)
    if isinstance(sel, Or):
        return any(reference_eval(op, labels) for op in sel.operands)
    present = sel.label in labels  # type: ignore[attr-defined]
    value = labels.get(sel.label, "")  # type: ignore[attr-defined]
    if isinstance(sel, Eq):
        return present and value == sel.value
    if isinstance(sel, Ne):
        return not present or value != sel.value
    if isinstance(sel, In):
        return present and value in sel.values
    if isinstance(sel, NotIn):
        return not present or value not in sel.values
    if isinstance(sel, Contains):
        return present and sel.value in value
    if isinstance(sel, StartsWith):
        return present and value.startswith(sel.value)
    if isinstance(sel, EndsWith):
        return present and value.endswith(sel.value)
    raise AssertionError(sel)


@settings(max_examples=300, deadline=None)
@given(SELECTORS)
def test_the_canonical_form_parses_back_to_the_same_selector(sel: Selector) -> None:
    text = str(sel)
    parsed = parse_selector(text)
    assert parsed == sel
    assert structure(parsed) == structure(sel)
    assert str(parsed) == text


@settings(max_examples=300, deadline=None)
@given(SELECTORS, LABEL_SETS)
def test_matching_agrees_with_the_documented_semantics(sel: Selector, labels: dict[str, str]) -> None:
    assert sel.matches(labels) is reference_eval(sel, labels)
    assert parse_selector(str(sel)).matches(labels) is reference_eval(sel, labels)


def noisy(sel: Selector, draw: Callable[[st.SearchStrategy[Any]], Any]) -> str:
    """Print ``sel`` the way a person might write it: any spacing, quote style, ``!!``, messy sets."""

    def ws() -> str:
        return draw(st.sampled_from(["", " ", "  ", "\t", " \t "]))

    def ws1() -> str:
        return draw(st.sampled_from([" ", "\t", "  "]))

    def quote(value: str) -> str:
        styles = [q for q in "\"'" if q not in value]
        q = draw(st.sampled_from(styles))
        return f"{q}{value}{q}"

    def paren(text: str) -> str:
        return f"({ws()}{text}{ws()})" if draw(st.booleans()) else text

    if isinstance(sel, All):
        return paren(f"all({ws()})")
    if isinstance(sel, Global):
        return paren(f"global({ws()})")
    if isinstance(sel, Has):
        return paren(f"has({ws()}{sel.label}{ws()})")
    if isinstance(sel, Not):
        return "!" + ws() + noisy(sel.operand, draw)
    if isinstance(sel, And | Or):
        op = "&&" if isinstance(sel, And) else "||"
        # Groups inside groups keep their own parentheses, or the tree would flatten.
        return "(" + ws() + f"{ws()}{op}{ws()}".join(noisy(o, draw) for o in sel.operands) + ws() + ")"
    if isinstance(sel, In | NotIn):
        op = "in" if isinstance(sel, In) else draw(st.sampled_from(["not in", "notin", "not\t in"]))
        values = list(sel.values) + draw(st.lists(st.sampled_from(list(sel.values) or [""]), max_size=2))
        if not sel.values:
            values = []
        values = draw(st.permutations(values))
        body = f"{ws()},{ws()}".join(quote(v) for v in values)
        if values and draw(st.booleans()):
            body += ","
        return paren(f"{sel.label}{ws1()}{op}{ws()}{{{ws()}{body}{ws()}}}")
    spellings: dict[type[Selector], list[str]] = {
        Eq: ["=="],
        Ne: ["!="],
        Contains: ["contains"],
        StartsWith: ["starts with", "startswith", "starts\t\twith"],
        EndsWith: ["ends with", "endswith"],
    }
    op = draw(st.sampled_from(spellings[type(sel)]))
    before = ws1() if op[0].isalpha() else ws()
    return paren(f"{sel.label}{before}{op}{ws()}{quote(sel.value)}")  # type: ignore[attr-defined]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_spelling_of_a_selector_parses_to_the_same_tree(data: st.DataObject) -> None:
    sel = data.draw(SELECTORS)
    text = noisy(sel, data.draw)
    parsed = parse_selector(text)
    assert structure(parsed) == structure(sel), text
    if isinstance(sel, Not):
        assert structure(parse_selector("!!" + text)) == structure(sel)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab =!&|(){}'\",\tinotcsh", max_size=25))
def test_arbitrary_text_either_parses_to_a_fixed_point_or_raises_a_selector_error(text: str) -> None:
    try:
        sel = parse_selector(text)
    except SelectorSyntaxError as err:
        assert 0 <= err.position <= len(text)
        return
    assert parse_selector(str(sel)) == sel
    assert str(parse_selector(str(sel))) == str(sel)


def test_parentheses_nested_past_the_limit_are_a_selector_error_not_a_recursion_error() -> None:
    deep = "(" * 1000 + "a == 'b'" + ")" * 1000
    with pytest.raises(SelectorError, match="parentheses nested deeper than 64 levels") as info:
        parse_selector(deep)
    assert len(str(info.value)) < 600


def test_parentheses_nested_to_the_limit_still_parse() -> None:
    assert parse_selector("(" * 64 + "a == 'b'" + ")" * 64) == parse_selector("a == 'b'")
