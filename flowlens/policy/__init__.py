"""Policy evaluation: manifests, Calico selectors, inventory, evaluation and simulation."""

from flowlens.policy.evaluate import Connection, Decision, Evaluator, Explanation
from flowlens.policy.inventory import Inventory, load_inventory
from flowlens.policy.manifests import load_policies, policies_from_objects
from flowlens.policy.model import (
    Endpoint,
    EntityRule,
    FlowKey,
    HostEndpoint,
    NetworkSet,
    Policy,
    PolicySet,
    Rule,
    Tier,
)
from flowlens.policy.selector import Selector, label_selector_to_calico, parse_selector, selector_for_labels
from flowlens.policy.simulate import (
    ConsistencyReport,
    SimulationResult,
    SimulationRow,
    check_consistency,
    simulate,
)

__all__ = [
    "Connection",
    "ConsistencyReport",
    "Decision",
    "Endpoint",
    "EntityRule",
    "Evaluator",
    "Explanation",
    "FlowKey",
    "HostEndpoint",
    "Inventory",
    "NetworkSet",
    "Policy",
    "PolicySet",
    "Rule",
    "Selector",
    "SimulationResult",
    "SimulationRow",
    "Tier",
    "check_consistency",
    "label_selector_to_calico",
    "load_inventory",
    "load_policies",
    "parse_selector",
    "policies_from_objects",
    "selector_for_labels",
    "simulate",
]
