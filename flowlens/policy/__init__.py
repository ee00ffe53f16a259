"""Policy evaluation: manifests, Calico selectors, inventory, evaluation and simulation."""

from flowlens.policy.selector import Selector, parse_selector

__all__ = ["Selector", "parse_selector"]
