"""The policy-hit grammar: Calico's own test vectors for F0, F1 and F2, and Goldmane objects."""

from __future__ import annotations

import pytest

from flowlens.formats.hits import HitParseError, hit_from_object, parse_hit, to_legacy

F1_VALID = [
    "0|tier|tier.name|allow|0",
    "1|tier|tier.staged:name.with.dots|deny|2",
    "0|tier|namespace/tier.name|allow|1",
    "0|default|namespace/knp.default.name|allow|2",
    "1|tier|namespace/tier.staged:name|deny|0",
    "1|default|namespace/staged:knp.default.name.with.dots|deny|3",
    "3|adminnetworkpolicy|kanp.adminnetworkpolicy.name|pass|4",
    "0|baselineadminnetworkpolicy|kbanp.baselineadminnetworkpolicy.name|pass|4",
    "1|__PROFILE__|__PROFILE__.kns.default|allow|0",
    "1|__PROFILE__|__PROFILE__.ksa.svcacct|allow|0",
    "0|tier1|ns1/tier1.policy1|deny|-1",
    "0|tier2|default/tier2.staged:np2-1|deny|-1",
]
F1_INVALID = [
    "0|tier|tier.name|allow|0|extra",
    "notint|tier1|ns1/tier1.policy1|deny|-1",
    "0|adminnetworkpolicy|adminnetworkpolicy.name|badaction|1",
    "1|tier|tier2.name|allow|0",
    "0||namespace/tier.name|allow|1",
    "0|tier1|default/|pass|0",
    "1|___PROFILE__|__PROFILE__.kns.default|allow|0",
]
F2_VALID = [
    "0|tier|gnp:name|allow|0",
    "1|tier|sgnp:name.with.dots|deny|2",
    "0|kube-admin|kcnp:name|deny|1",
    "0|tier|np:namespace/tier.name|allow|1",
    "0|default|knp:namespace/name|allow|2",
    "1|tier|snp:namespace/name|deny|0",
    "1|default|sknp:namespace/name|deny|3",
    "2|__PROFILE__|pro:kns.default|allow|1",
    "1|__PROFILE__|pro:ksa.svcacct|allow|0",
    "0|tier1|np:ns1/tier1.policy1|deny|-1",
    "2|kube-admin|gnp:kube-admin.policy1|allow|-1",
    "0|tier2|snp:default/np2-1|deny|-1",
]
F2_INVALID = [
    "0||np:namespace/name|allow|1",
    "0|tier1|np:namespace/|pass|0",
    "1|__PROFILE__|pro:PSA.svcacct|allow|0",
]


@pytest.mark.parametrize("text", F1_VALID)
def test_legacy_hit_strings_round_trip(text):
    assert to_legacy(parse_hit(text)) == text


@pytest.mark.parametrize("text", F2_VALID)
def test_modern_hit_strings_round_trip(text):
    assert parse_hit(text).hit == text


@pytest.mark.parametrize("text", F1_INVALID + F2_INVALID)
def test_malformed_hit_strings_are_rejected(text):
    with pytest.raises(HitParseError):
        parse_hit(text)


def test_the_same_policy_reads_the_same_in_legacy_and_modern_form():
    pairs = [
        ("0|tier1|default/tier1.np1-1|pass|0", "0|tier1|np:default/tier1.np1-1|pass|0"),
        ("1|__PROFILE__|__PROFILE__.kns.default|allow|0", "1|__PROFILE__|pro:kns.default|allow|0"),
        ("0|tier1|tier1.ep2-4|pass|-1", "0|tier1|gnp:tier1.ep2-4|pass|-1"),
        ("0|default|production/knp.default.allow-web|allow|0", "0|default|knp:production/allow-web|allow|0"),
        (
            "2|default|policy-demo/default.access-nginx|allow|2",
            "2|default|np:policy-demo/access-nginx|allow|2",
        ),
    ]
    for legacy, modern in pairs:
        assert parse_hit(legacy) == parse_hit(modern)


def test_four_part_hits_have_no_rule_index_and_profiles_and_end_of_tier_are_told_apart():
    old = parse_hit("0|__PROFILE__|__PROFILE__.kns.kube-system|allow")
    assert old.rule_index is None and old.is_profile and not old.end_of_tier
    assert old.hit == "0|__PROFILE__|pro:kns.kube-system|allow|-"
    eot = parse_hit("0|default|production/knp.default.default-deny|deny|-1")
    assert eot.end_of_tier and eot.kind == "KubernetesNetworkPolicy" and not eot.is_profile


def test_a_documentation_style_name_without_its_tier_is_kept_when_not_strict():
    with pytest.raises(HitParseError):
        parse_hit("1|tier2|ns2/staged:tier1.policy1|deny|1")
    hit = parse_hit("1|tier2|ns2/staged:tier1.policy1|deny|1", strict=False)
    assert (hit.kind, hit.namespace, hit.name, hit.tier) == (
        "StagedNetworkPolicy",
        "ns2",
        "tier1.policy1",
        "tier2",
    )


def test_goldmane_objects_default_omitted_fields_and_fold_end_of_tier_into_its_trigger():
    assert hit_from_object(
        {"kind": 6, "namespace": "demo", "name": "allow-client", "tier": "default", "action": 1}
    ).hit == ("0|default|knp:demo/allow-client|allow|0")
    eot = hit_from_object(
        {
            "kind": 10,
            "tier": "tier1",
            "action": 2,
            "policy_index": 1,
            "rule_index": -1,
            "trigger": {"kind": 1, "namespace": "ns1", "name": "tier1.policy1", "tier": "tier1"},
        }
    )
    assert eot.hit == "1|tier1|np:ns1/tier1.policy1|deny|-1"
    profile = hit_from_object({"kind": 9, "name": "kns.default", "action": 1, "policy_index": 2})
    assert profile.hit == "2|__PROFILE__|pro:kns.default|allow|0"
    with pytest.raises(HitParseError):
        hit_from_object({"kind": 42, "name": "x", "tier": "t", "action": 1})


def test_an_end_of_tier_object_without_a_trigger_is_kept_as_no_match():
    hit = hit_from_object({"kind": 10, "tier": "security", "action": 2, "policy_index": 0, "rule_index": -1})
    assert hit.hit == "0|security|eot:__NO_MATCH__|deny|-1"
    assert hit.end_of_tier and hit.kind == "EndOfTier"


# Cluster guardrails (rulebook G10): the hits Calico writes for ClusterNetworkPolicy (v3.32+,
# Felix's fv tests) and for the admin network policies (v3.30/v3.31, Goldmane's tests).
GUARDRAIL_HITS = [
    ("0|kube-admin|kcnp:pass-ingress|pass|0", "ClusterNetworkPolicy", "kube-admin", "pass-ingress"),
    (
        "2|kube-baseline|kcnp:baseline-allow|allow|0",
        "ClusterNetworkPolicy",
        "kube-baseline",
        "baseline-allow",
    ),
    ("0|kube-admin|kcnp:name|deny|1", "ClusterNetworkPolicy", "kube-admin", "name"),
    (
        "3|adminnetworkpolicy|kanp.adminnetworkpolicy.name|pass|4",
        "AdminNetworkPolicy",
        "adminnetworkpolicy",
        "name",
    ),
    (
        "0|baselineadminnetworkpolicy|kbanp.baselineadminnetworkpolicy.name|pass|4",
        "BaselineAdminNetworkPolicy",
        "baselineadminnetworkpolicy",
        "name",
    ),
    (
        "0|adminnetworkpolicy|kanp.adminnetworkpolicy.policy1|allow|-1",
        "AdminNetworkPolicy",
        "adminnetworkpolicy",
        "policy1",
    ),
]


@pytest.mark.parametrize(("text", "kind", "tier", "name"), GUARDRAIL_HITS)
def test_g10_guardrail_hits_name_their_kind_and_tier_and_have_no_namespace(text, kind, tier, name):
    hit = parse_hit(text)
    assert (hit.kind, hit.tier, hit.name, hit.namespace) == (kind, tier, name, None)
    assert hit.as_row()["kind"] == kind


def test_g10_admin_network_policy_hits_read_the_same_in_legacy_and_in_the_lma_short_kinds():
    assert parse_hit("3|adminnetworkpolicy|kanp:name|pass|4") == parse_hit(
        "3|adminnetworkpolicy|kanp.adminnetworkpolicy.name|pass|4"
    )
    assert to_legacy(parse_hit("0|baselineadminnetworkpolicy|kbanp:default|deny|-1")) == (
        "0|baselineadminnetworkpolicy|kbanp.baselineadminnetworkpolicy.default|deny|-1"
    )


@pytest.mark.parametrize(
    ("kind", "whisker", "tier", "expected"),
    [
        (11, "ClusterNetworkPolicy", "kube-admin", "0|kube-admin|kcnp:guard|deny|2"),
        (7, "AdminNetworkPolicy", "adminnetworkpolicy", "0|adminnetworkpolicy|kanp:guard|deny|2"),
        (
            8,
            "BaselineAdminNetworkPolicy",
            "baselineadminnetworkpolicy",
            "0|baselineadminnetworkpolicy|kbanp:guard|deny|2",
        ),
    ],
)
def test_g10_goldmane_and_whisker_name_the_cluster_policy_kinds(kind, whisker, tier, expected):
    goldmane = hit_from_object({"kind": kind, "name": "guard", "tier": tier, "action": 2, "rule_index": 2})
    whisker_hit = hit_from_object(
        {"kind": whisker, "name": "guard", "namespace": "", "tier": tier, "action": "Deny", "rule_index": 2}
    )
    assert goldmane.hit == whisker_hit.hit == expected


def test_g10_the_end_of_tier_pass_of_a_guardrail_tier_folds_into_the_cluster_policy_it_blames():
    eot = hit_from_object(
        {
            "kind": 10,
            "tier": "kube-admin",
            "action": 3,
            "rule_index": -1,
            "trigger": {"kind": 11, "name": "protect-system", "tier": "kube-admin"},
        }
    )
    assert eot.hit == "0|kube-admin|kcnp:protect-system|pass|-1"
    whisker = hit_from_object(
        {
            "kind": "EndOfTier",
            "tier": "kube-baseline",
            "action": "Pass",
            "policy_index": 1,
            "rule_index": -1,
            "trigger": {"kind": "ClusterNetworkPolicy", "name": "default-deny", "tier": "kube-baseline"},
        }
    )
    assert whisker.hit == "1|kube-baseline|kcnp:default-deny|pass|-1" and whisker.end_of_tier
