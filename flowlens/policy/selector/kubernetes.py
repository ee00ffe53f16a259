"""Kubernetes ``LabelSelector`` objects as Calico selectors (rulebook L1).

Owns :func:`label_selector_to_calico`, the conversion Calico's ``k8sSelectorToCalico`` applies,
with errors that name the field path of the problem.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from flowlens.errors import SelectorError
from flowlens.policy.selector.nodes import (
    ORCHESTRATOR_LABEL,
    Eq,
    Has,
    In,
    Not,
    NotIn,
    Selector,
    and_,
    is_valid_label,
)

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
    if type(obj) is dict and obj.keys() <= {"matchLabels"}:
        labels = obj.get("matchLabels") or {}
        if type(labels) is dict and all(type(k) is str and type(v) is str for k, v in labels.items()):
            try:
                return _match_labels(orchestrator, tuple(sorted(labels.items())))
            except SelectorError:
                pass  # said below, with the path of the field
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


@functools.lru_cache(maxsize=4096)
def _match_labels(orchestrator: bool, items: tuple[tuple[str, str], ...]) -> Selector:
    """A selector of ``matchLabels`` alone (sorted items), built once: a policy set names the same
    pods in many rules (selectors are immutable, so the rules share it)."""
    clauses: list[Selector] = [Eq(ORCHESTRATOR_LABEL, "k8s")] if orchestrator else []
    for key, value in items:
        _check_k8s_key(key, "matchLabels")
        _check_k8s_value(value, "matchLabels")
        clauses.append(Eq(key, value))
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
