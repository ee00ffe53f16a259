"""The offline policy engine: Kubernetes and Calico policies evaluated the way Calico does.

The rules it implements are numbered in ``docs/policy/rulebook.md``. Where things are:

* :mod:`.model` — the policy model (policies, rules, tiers, network sets, host endpoints,
  endpoints, flow keys); :mod:`.selector` — the Calico selector language;
* :mod:`.manifests` — YAML/JSON manifests into the model, one module per API family;
  :mod:`.inventory` — the cluster's namespaces, pods and service accounts;
* :mod:`.compiled` — compiled policies and plans; :mod:`.endpoints` — a flow's sides as Felix
  sees them; :mod:`.matching` — rule matching; :mod:`.walk` — the tier walk;
  :mod:`.evaluate` — the :class:`Evaluator` that coordinates them;
* :mod:`.simulate` — replay of the store's flows (:mod:`.replay`: one flow key replayed;
  :mod:`.spark_replay`: the keys replayed in Spark's tasks); :mod:`.lookup` — endpoints people name;
  :mod:`.render` — ``simulate`` and ``explain`` output.
"""

from flowlens.policy.evaluate import Connection, Decision, Evaluator, Explanation
from flowlens.policy.inventory import Inventory, load_inventory
from flowlens.policy.manifests import load_candidate, load_policies, policies_from_objects
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
    "load_candidate",
    "load_inventory",
    "load_policies",
    "parse_selector",
    "policies_from_objects",
    "selector_for_labels",
    "simulate",
]
