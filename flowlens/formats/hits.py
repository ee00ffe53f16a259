"""The policy-hit string grammar (F0, F1, F2) and Goldmane ``PolicyHit`` objects, as one model.

``<policy_index>|<tier>|<name_part>|<action>|<rule_index>`` in three historical spellings:

* F0: four parts, no rule index (Calico Enterprise 2019-2021);
* F1: legacy name parts (``ns/tier.name``, ``ns/knp.default.name``, ``tier.staged:name`` ...);
* F2: modern ``<kind>:[<namespace>/]<name>`` name parts (Calico v3.32+).

Every spelling parses to the same :class:`PolicyHit`, whose ``hit`` string is the F2 form, so a
trace written by any Calico version compares equal to the one the policy engine computes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flowlens.schema import KINDS, PROFILE_TIER, SHORT_KINDS

ACTIONS = ("allow", "deny", "pass")

_GOLDMANE_KINDS = {
    0: None,
    1: "NetworkPolicy",
    2: "GlobalNetworkPolicy",
    3: "StagedNetworkPolicy",
    4: "StagedGlobalNetworkPolicy",
    5: "StagedKubernetesNetworkPolicy",
    6: "KubernetesNetworkPolicy",
    7: "AdminNetworkPolicy",
    8: "BaselineAdminNetworkPolicy",
    9: "Profile",
    10: "EndOfTier",
    11: "ClusterNetworkPolicy",
}
# Whisker spells the kinds with their Goldmane enum names.
_WHISKER_KINDS = {
    "CalicoNetworkPolicy": "NetworkPolicy",
    "GlobalNetworkPolicy": "GlobalNetworkPolicy",
    "StagedNetworkPolicy": "StagedNetworkPolicy",
    "StagedGlobalNetworkPolicy": "StagedGlobalNetworkPolicy",
    "StagedKubernetesNetworkPolicy": "StagedKubernetesNetworkPolicy",
    "NetworkPolicy": "KubernetesNetworkPolicy",
    "AdminNetworkPolicy": "AdminNetworkPolicy",
    "BaselineAdminNetworkPolicy": "BaselineAdminNetworkPolicy",
    "ClusterNetworkPolicy": "ClusterNetworkPolicy",
    "Profile": "Profile",
    "EndOfTier": "EndOfTier",
    "KindUnspecified": None,
}
_GOLDMANE_ACTIONS = {0: None, 1: "allow", 2: "deny", 3: "pass"}
_DNS_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class HitParseError(ValueError):
    """A policy-hit string or object that does not follow any Calico format."""


@dataclass(frozen=True)
class PolicyHit:
    """One entry of a policy trace."""

    policy_index: int | None
    tier: str
    kind: str
    namespace: str | None
    name: str
    action: str
    rule_index: int | None

    @property
    def staged(self) -> bool:
        return self.kind.startswith("Staged")

    @property
    def end_of_tier(self) -> bool:
        return self.rule_index == -1

    @property
    def is_profile(self) -> bool:
        return self.kind == "Profile"

    @property
    def hit(self) -> str:
        """The F2 (modern) string form."""
        short = KINDS[self.kind][0]
        ns = f"{self.namespace}/" if self.namespace else ""
        idx = "" if self.policy_index is None else str(self.policy_index)
        rule = "-" if self.rule_index is None else str(self.rule_index)
        return f"{idx}|{self.tier}|{short}:{ns}{self.name}|{self.action}|{rule}"

    def as_row(self) -> dict[str, Any]:
        """The hit as a row of the schema's POLICY_HIT struct."""
        return {
            "policy_index": self.policy_index,
            "tier": self.tier,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "action": self.action,
            "rule_index": self.rule_index,
            "staged": self.staged,
            "end_of_tier": self.end_of_tier,
            "hit": self.hit,
        }


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise HitParseError(f"{what} {text!r} is not an integer") from None


def _split_ns(text: str) -> tuple[str | None, str]:
    if "/" in text:
        ns, name = text.split("/", 1)
        if not ns or not name:
            raise HitParseError(f"empty namespace or name in {text!r}")
        return ns, name
    return None, text


def _parse_legacy(tier: str, part: str, strict: bool = True) -> tuple[str, str | None, str]:
    """F0/F1 name part -> (kind, namespace, name)."""
    if tier == PROFILE_TIER:
        if not part.startswith("__PROFILE__."):
            raise HitParseError(f"profile hit name {part!r} does not start with '__PROFILE__.'")
        return "Profile", None, part[len("__PROFILE__.") :]
    if part.startswith("kanp.adminnetworkpolicy."):
        return "AdminNetworkPolicy", None, part[len("kanp.adminnetworkpolicy.") :]
    if part.startswith("kbanp.baselineadminnetworkpolicy."):
        return "BaselineAdminNetworkPolicy", None, part[len("kbanp.baselineadminnetworkpolicy.") :]
    ns, rest = _split_ns(part)
    staged = "staged:" in rest
    rest = rest.replace("staged:", "", 1)
    if ns is not None and rest.startswith("knp.default."):
        return (
            ("StagedKubernetesNetworkPolicy" if staged else "KubernetesNetworkPolicy"),
            ns,
            rest[len("knp.default.") :],
        )
    if not rest.startswith(tier + "."):
        if strict:
            raise HitParseError(f"policy name {part!r} does not carry its tier {tier!r}")
        # Calico's own docs show names like 'ns2/staged:tier1.policy1' in tier 'tier2'; keep the
        # name as written rather than lose the record.
        kind = ("StagedNetworkPolicy" if staged else "NetworkPolicy") if ns else None
        if kind is None:
            kind = "StagedGlobalNetworkPolicy" if staged else "GlobalNetworkPolicy"
        if not rest:
            raise HitParseError(f"empty policy name in {part!r}")
        return kind, ns, rest
    bare = rest[len(tier) + 1 :]
    if not bare:
        raise HitParseError(f"empty policy name in {part!r}")
    # Default-tier names are shown with a 'default.' prefix that is not part of the resource name;
    # names in other tiers had to be '<tier>.<name>' before Calico v3.32, so keep the prefix there.
    name = bare if tier == "default" else rest
    if ns is None:
        return ("StagedGlobalNetworkPolicy" if staged else "GlobalNetworkPolicy"), None, name
    return ("StagedNetworkPolicy" if staged else "NetworkPolicy"), ns, name


def _parse_modern(tier: str, short: str, rest: str) -> tuple[str, str | None, str]:
    kind = SHORT_KINDS[short]
    namespaced = KINDS[kind][1]
    if namespaced:
        ns, name = _split_ns(rest)
        if ns is None:
            raise HitParseError(f"{kind} hit {rest!r} has no namespace")
    else:
        ns, name = None, rest
    if not name:
        raise HitParseError("empty policy name")
    if kind == "Profile":
        if tier != PROFILE_TIER:
            raise HitParseError(f"profile hit in tier {tier!r}")
        prefix = name.split(".", 1)[0]
        if prefix not in ("kns", "ksa", "__NO_MATCH__") and not _DNS_NAME.match(prefix):
            raise HitParseError(f"invalid profile name {name!r}")
    if ns is not None and not _DNS_NAME.match(ns):
        raise HitParseError(f"invalid namespace {ns!r}")
    return kind, ns, name


def is_modern(name_part: str) -> bool:
    """Calico's rule: modern iff there is a ':' and the text before it is a known short kind."""
    head, sep, _ = name_part.partition(":")
    return bool(sep) and head in SHORT_KINDS


def parse_hit(text: str, *, strict: bool = True) -> PolicyHit:
    """Parse one policy-hit string in any of the F0, F1 or F2 formats.

    ``strict=False`` (what ingest uses) also accepts a legacy name that does not carry its tier,
    as in Calico's documentation examples, instead of rejecting it as Calico's parser does."""
    parts = text.split("|")
    if len(parts) == 4:
        parts.append("-")
    if len(parts) != 5:
        raise HitParseError(f"policy hit {text!r} has {len(parts)} parts, expected 4 or 5")
    idx_s, tier, name_part, action, rule_s = parts
    policy_index = None if idx_s == "" else _int(idx_s, "policy index")
    if not tier:
        raise HitParseError(f"policy hit {text!r} has an empty tier")
    if action not in ACTIONS:
        raise HitParseError(f"policy hit {text!r} has unknown action {action!r}")
    rule_index = None if rule_s in ("-", "") else _int(rule_s, "rule index")
    if is_modern(name_part):
        short, _, rest = name_part.partition(":")
        kind, ns, name = _parse_modern(tier, short, rest)
    else:
        kind, ns, name = _parse_legacy(tier, name_part, strict)
    return PolicyHit(policy_index, tier, kind, ns, name, action, rule_index)


def _enum(value: Any, table: dict[Any, str | None], what: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value in table:
        return table[value]
    if isinstance(value, bool) or not isinstance(value, int) or value not in table:
        raise HitParseError(f"unknown {what} {value!r}")
    return table[value]


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def check_indexes(hit: PolicyHit) -> PolicyHit:
    """``hit``, when its policy and rule index fit the store's 32 bits; else HitParseError."""
    for what, value in (("policy index", hit.policy_index), ("rule index", hit.rule_index)):
        if value is not None and not INT32_MIN <= value <= INT32_MAX:
            raise HitParseError(f"{what} {value} out of range (expected {INT32_MIN}..{INT32_MAX})")
    return hit


def _field(obj: dict[str, Any], key: str, kind: type) -> Any:
    """A hit object's field of type ``kind`` (None when absent or null); HitParseError when it
    holds another type (a boolean is no integer)."""
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise HitParseError(
            f"policy hit field '{key}' is not {'a string' if kind is str else 'an integer'}: {value!r}"
        )
    return value


def hit_from_object(obj: dict[str, Any]) -> PolicyHit:
    """A Goldmane emitter ``PolicyHit`` (enums as integers, zero fields omitted) or a Whisker one
    (enum names). An ``EndOfTier`` hit is folded into the policy that triggered it."""
    if not isinstance(obj, dict):
        raise HitParseError(f"policy hit {obj!r} is not an object")
    kind_raw = obj.get("kind", 0)
    kind = (
        _enum(kind_raw, _WHISKER_KINDS, "policy kind")
        if isinstance(kind_raw, str)
        else _enum(kind_raw, _GOLDMANE_KINDS, "policy kind")
    )
    action_raw = obj.get("action", 0)
    action = (
        (action_raw.lower() if action_raw in ("Allow", "Deny", "Pass") else None)
        if isinstance(action_raw, str)
        else _enum(action_raw, _GOLDMANE_ACTIONS, "action")
    )
    if action is None:
        raise HitParseError(f"policy hit {obj!r} has no action")
    tier = _field(obj, "tier", str) or ""
    namespace = _field(obj, "namespace", str) or None
    name = _field(obj, "name", str) or ""
    policy_index = _field(obj, "policy_index", int) or 0
    rule_index = _field(obj, "rule_index", int) or 0
    trigger = obj.get("trigger")
    if kind == "EndOfTier":
        rule_index = -1
        if isinstance(trigger, dict) and trigger:
            inner = hit_from_object({**trigger, "action": action_raw, "tier": trigger.get("tier") or tier})
            kind, namespace, name = inner.kind, inner.namespace, inner.name
            tier = tier or inner.tier
    if kind is None:
        raise HitParseError(f"policy hit {obj!r} has no kind")
    if kind == "EndOfTier" and not name:
        name = "__NO_MATCH__"  # an end of tier that names no policy (Felix's eot:__NO_MATCH__)
    if kind == "Profile":
        tier = PROFILE_TIER
    if not tier:
        raise HitParseError(f"policy hit {obj!r} has no tier")
    if not name:
        raise HitParseError(f"policy hit {obj!r} has no name")
    if not KINDS[kind][1]:
        namespace = None
    return PolicyHit(policy_index, tier, kind, namespace, name, action, rule_index)


def to_legacy(hit: PolicyHit) -> str:
    """The F1 string form of a hit (what Calico up to v3.31 writes)."""
    kind, tier, ns, name = hit.kind, hit.tier, hit.namespace, hit.name
    if kind == "Profile":
        part = f"__PROFILE__.{name}"
    elif kind in ("KubernetesNetworkPolicy", "StagedKubernetesNetworkPolicy"):
        part = f"{ns}/{'staged:' if hit.staged else ''}knp.default.{name}"
    elif kind == "AdminNetworkPolicy":
        part = f"kanp.adminnetworkpolicy.{name}"
    elif kind == "BaselineAdminNetworkPolicy":
        part = f"kbanp.baselineadminnetworkpolicy.{name}"
    else:
        bare = name[len(tier) + 1 :] if name.startswith(tier + ".") else name
        core = f"{tier}.{'staged:' if hit.staged else ''}{bare}"
        part = f"{ns}/{core}" if ns else core
    idx = "" if hit.policy_index is None else str(hit.policy_index)
    rule = "-" if hit.rule_index is None else str(hit.rule_index)
    return f"{idx}|{tier}|{part}|{hit.action}|{rule}"


def sort_trace(hits: list[PolicyHit]) -> list[PolicyHit]:
    """Calico writes trace entries in random order: sort them by their leading index."""
    return sorted(hits, key=lambda h: (h.policy_index is None, h.policy_index or 0, h.hit))
