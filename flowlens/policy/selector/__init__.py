"""Calico selectors: the tokenizer, parser, canonical form and matching, plus Kubernetes LabelSelectors.

This package owns the selector language exactly as Calico's ``libcalico-go/lib/selector``
implements it (tokenizer rules, precedence, ``Selector.String()`` canonical form, evaluation;
rulebook L2) and the conversion Calico applies to a Kubernetes ``LabelSelector`` (rulebook L1).
Everything that matches labels in flowlens goes through it:

* :mod:`~flowlens.policy.selector.nodes` — the selector tree, its canonical form, matching and
  combinators;
* :mod:`~flowlens.policy.selector.parse` — the tokenizer and parser (:func:`parse_selector`);
* :mod:`~flowlens.policy.selector.kubernetes` — :func:`label_selector_to_calico`.
"""

from flowlens.policy.selector.kubernetes import label_selector_to_calico
from flowlens.policy.selector.nodes import (
    MAX_LABEL_LENGTH,
    NAMESPACE_LABEL,
    NAMESPACE_LABEL_PREFIX,
    ORCHESTRATOR_LABEL,
    SERVICE_ACCOUNT_LABEL_PREFIX,
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
    and_,
    is_valid_label,
    negate,
    or_,
    selector_for_labels,
    to_namespace_scope,
)
from flowlens.policy.selector.parse import SelectorSyntaxError, parse_selector

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
