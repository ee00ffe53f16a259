"""Calico evaluation (rulebook C1-C11, L2, L3): tiers, order, actions, profiles, rules and scopes."""

from __future__ import annotations

from flowlens.policy import Inventory
from tests.policy.helpers import World, cluster, pod

EXTERNAL = "8.8.8.8"


def base_cluster() -> Inventory:
    return cluster(
        [
            pod("prod", "web", {"app": "web"}, "10.0.1.1", sa="web-sa", ports={"http": ("TCP", 8080)}),
            pod("prod", "db", {"app": "db"}, "10.0.1.2", sa="db-sa"),
            pod("prod", "tagged", {"app": "tool", "debug": "true"}, "10.0.1.3"),
            pod("dev", "web", {"app": "web"}, "10.0.2.1", sa="web-sa"),
            pod("dev", "client", {"app": "client"}, "10.0.2.2"),
            pod("ops", "agent", {"app": "agent"}, "10.0.3.1", sa="agent"),
        ],
        {"prod": {"env": "prod", "shape": "circle"}, "dev": {"env": "dev"}, "ops": {"team": "ops"}},
        {
            ("prod", "web-sa"): {"role": "frontend"},
            ("prod", "db-sa"): {},
            ("prod", "default"): {},
            ("dev", "web-sa"): {"role": "frontend"},
            ("dev", "default"): {},
            ("ops", "agent"): {},
        },
    )


def world(text: str) -> World:
    return World(text, base_cluster())


def tier(name: str, order: float | None, default_action: str | None = None) -> str:
    spec = []
    if order is not None:
        spec.append(f"order: {order}")
    if default_action:
        spec.append(f"defaultAction: {default_action}")
    return f"""
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {{name: {name}}}
spec: {{{", ".join(spec)}}}
"""


def gnp(name: str, body: str) -> str:
    return f"""
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {{name: {name}}}
spec:
{body}
"""


def np(ns: str, name: str, body: str) -> str:
    return f"""
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {{name: {name}, namespace: {ns}}}
spec:
{body}
"""


DENY_WEB_INGRESS = """
  selector: app == 'web'
  types: [Ingress]
  ingress: [{action: Deny}]
"""
ALLOW_WEB_INGRESS = """
  selector: app == 'web'
  types: [Ingress]
  ingress: [{action: Allow}]
"""


def test_c1_tiers_run_in_ascending_order() -> None:
    w = world(
        tier("first", 10)
        + tier("second", 20)
        + gnp("first.allow", "  tier: first\n" + ALLOW_WEB_INGRESS)
        + gnp("second.deny", "  tier: second\n" + DENY_WEB_INGRESS)
    )
    assert w.allowed("dev/client", "prod/web")
    assert w.ingress_trace("dev/client", "prod/web") == ["0|first|gnp:first.allow|allow|0"]


def test_c1_a_tier_without_order_runs_last_after_the_default_tier() -> None:
    w = world(
        tier("late", None)
        + gnp("late.allow", "  tier: late\n" + ALLOW_WEB_INGRESS)
        + gnp("deny-web", DENY_WEB_INGRESS)
    )
    assert not w.allowed("dev/client", "prod/web")
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|gnp:deny-web|deny|0"]


def test_c1_the_default_tier_has_order_one_million() -> None:
    w = world(
        tier("before", 999_999)
        + tier("after", 1_000_001)
        + gnp("before.deny", "  tier: before\n" + DENY_WEB_INGRESS)
        + gnp("allow-web", ALLOW_WEB_INGRESS)
        + gnp("after.deny", "  tier: after\n" + DENY_WEB_INGRESS)
    )
    assert w.ingress_trace("dev/client", "prod/web") == ["0|before|gnp:before.deny|deny|0"]


def test_c1_tiers_with_the_same_order_are_sorted_by_name() -> None:
    w = world(
        tier("bbb", 5)
        + tier("aaa", 5)
        + gnp("bbb.deny", "  tier: bbb\n" + DENY_WEB_INGRESS)
        + gnp("aaa.allow", "  tier: aaa\n" + ALLOW_WEB_INGRESS)
    )
    assert w.ingress_trace("dev/client", "prod/web") == ["0|aaa|gnp:aaa.allow|allow|0"]


def test_c2_a_tier_that_selects_no_policy_for_the_endpoint_is_skipped_without_end_of_tier_deny() -> None:
    w = world(
        tier("security", 100)
        + gnp(
            "security.db-only",
            "  tier: security\n  selector: app == 'db'\n  ingress: [{action: Deny, source: {selector: app == 'nothing'}}]",
        )
    )
    assert w.allowed("dev/client", "prod/web")
    assert w.ingress_trace("dev/client", "prod/web") == ["0|__PROFILE__|pro:kns.prod|allow|0"]
    assert w.ingress_trace("dev/client", "prod/db") == ["0|security|gnp:security.db-only|deny|-1"]


def test_c2_tier_applicability_is_per_direction() -> None:
    w = world(
        tier("security", 100)
        + gnp(
            "security.web-in", "  tier: security\n  selector: app == 'web'\n  types: [Ingress]\n  ingress: []"
        )
    )
    # web's egress is not governed by the Ingress-only policy: the tier is skipped for egress.
    assert w.allowed("prod/web", "prod/db")
    assert w.egress_trace("prod/web", "prod/db") == ["0|__PROFILE__|pro:kns.prod|allow|0"]
    assert w.ingress_trace("prod/db", "prod/web") == ["0|security|gnp:security.web-in|deny|-1"]


def test_c3_policies_run_in_ascending_order_and_no_order_means_last() -> None:
    w = world(
        gnp("a-unordered-allow", ALLOW_WEB_INGRESS) + gnp("z-deny", "  order: 500\n" + DENY_WEB_INGRESS)
    )
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|gnp:z-deny|deny|0"]


def test_c3_equal_orders_are_broken_by_name() -> None:
    w = world(
        gnp("b-allow", "  order: 10\n" + ALLOW_WEB_INGRESS)
        + gnp("a-deny", "  order: 10\n" + DENY_WEB_INGRESS)
    )
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|gnp:a-deny|deny|0"]


def test_c3_rules_inside_a_policy_run_in_list_order() -> None:
    w = world(
        gnp(
            "ordered",
            """
  selector: app == 'web'
  ingress:
  - {action: Allow, protocol: TCP, destination: {ports: [80]}}
  - {action: Deny}
  - {action: Allow}
""",
        )
    )
    assert w.ingress_trace("dev/client", "prod/web", 80) == ["0|default|gnp:ordered|allow|0"]
    assert w.ingress_trace("dev/client", "prod/web", 81) == ["0|default|gnp:ordered|deny|1"]


def test_c4_log_continues_with_the_next_rule_and_never_appears_in_the_trace() -> None:
    w = world(gnp("log-then-allow", "  selector: app == 'web'\n  ingress: [{action: Log}, {action: Allow}]"))
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|gnp:log-then-allow|allow|1"]


def test_c4_pass_skips_later_policies_of_the_same_tier_and_continues_with_the_next_tier() -> None:
    w = world(
        tier("security", 100)
        + gnp(
            "security.pass",
            "  tier: security\n  order: 1\n  selector: app == 'web'\n  ingress: [{action: Pass}]",
        )
        + gnp("security.deny", "  tier: security\n  order: 2\n" + DENY_WEB_INGRESS)
        + gnp("allow-web", ALLOW_WEB_INGRESS)
    )
    assert w.allowed("dev/client", "prod/web")
    assert w.ingress_trace("dev/client", "prod/web") == [
        "0|security|gnp:security.pass|pass|0",
        "1|default|gnp:allow-web|allow|0",
    ]


def test_c4_a_policy_whose_rules_do_not_match_gives_no_verdict() -> None:
    w = world(
        gnp(
            "first",
            "  order: 1\n  selector: app == 'web'\n  ingress: [{action: Deny, source: {selector: app == 'db'}}]",
        )
        + gnp("second", "  order: 2\n" + ALLOW_WEB_INGRESS)
    )
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|gnp:second|allow|0"]
    assert w.ingress_trace("prod/db", "prod/web") == ["0|default|gnp:first|deny|0"]


def test_c5_end_of_tier_deny_names_the_last_applicable_policy_of_the_tier() -> None:
    w = world(
        gnp(
            "a-first",
            "  order: 1\n  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: app == 'db'}}]",
        )
        + gnp(
            "b-last",
            "  order: 2\n  selector: all()\n  ingress: [{action: Allow, source: {selector: app == 'agent'}}]",
        )
        + gnp("c-other", "  order: 3\n  selector: app == 'db'\n  ingress: [{action: Allow}]")
    )
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|gnp:b-last|deny|-1"]
    hit = w.connection("dev/client", "prod/web").ingress.enforced[0]
    assert hit.end_of_tier and hit.rule_index == -1 and hit.kind == "GlobalNetworkPolicy"


def test_c5_a_tier_with_default_action_pass_continues_with_the_next_tier() -> None:
    w = world(
        tier("tier1", 100, "Pass")
        + gnp(
            "tier1.ep2-4",
            "  tier: tier1\n  selector: app == 'web'\n  ingress: [{action: Deny, source: {selector: app == 'db'}}]",
        )
    )
    assert w.allowed("dev/client", "prod/web")
    assert w.ingress_trace("dev/client", "prod/web") == [
        "0|tier1|gnp:tier1.ep2-4|pass|-1",
        "1|__PROFILE__|pro:kns.prod|allow|0",
    ]


def test_c6_a_pod_no_policy_selects_is_allowed_by_its_namespace_profile() -> None:
    w = world(gnp("db-only", "  selector: app == 'db'\n  ingress: [{action: Deny}]"))
    conn = w.connection("dev/client", "prod/web")
    assert conn.action == "allow"
    assert [h.hit for h in conn.ingress.enforced] == ["0|__PROFILE__|pro:kns.prod|allow|0"]
    assert [h.hit for h in conn.egress.enforced] == ["0|__PROFILE__|pro:kns.dev|allow|0"]


def test_c6_a_pass_out_of_the_last_applicable_tier_is_allowed_by_the_profile() -> None:
    w = world(gnp("pass-all", "  selector: all()\n  ingress: [{action: Pass}]"))
    assert w.ingress_trace("dev/client", "prod/web") == [
        "0|default|gnp:pass-all|pass|0",
        "1|__PROFILE__|pro:kns.prod|allow|0",
    ]


K8S_DENY_ALL_PROD = """
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: prod}
spec:
  podSelector: {}
"""


def test_c7_a_calico_deny_before_order_1000_overrides_kubernetes_allows() -> None:
    w = world(
        """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-all, namespace: prod}
spec:
  podSelector: {}
  ingress: [{}]
"""
        + np(
            "prod",
            "deny-client",
            "  order: 500\n  ingress: [{action: Deny, source: {namespaceSelector: env == 'dev'}}]",
        )
    )
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|np:prod/deny-client|deny|0"]
    assert w.allowed("prod/db", "prod/web")


def test_c7_a_later_calico_allow_in_the_default_tier_admits_what_kubernetes_would_deny() -> None:
    w = world(K8S_DENY_ALL_PROD + np("prod", "allow-later", "  order: 2000\n  ingress: [{action: Allow}]"))
    assert w.allowed("dev/client", "prod/web")
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|np:prod/allow-later|allow|0"]


def test_c7_a_calico_policy_without_order_runs_after_kubernetes_policies() -> None:
    w = world(K8S_DENY_ALL_PROD + np("prod", "allow-unordered", "  ingress: [{action: Allow}]"))
    assert w.allowed("dev/client", "prod/web")


def test_c7_an_earlier_pass_in_the_default_tier_bypasses_kubernetes_policies() -> None:
    w = world(K8S_DENY_ALL_PROD + np("prod", "pass-first", "  order: 100\n  ingress: [{action: Pass}]"))
    assert w.allowed("dev/client", "prod/web")
    assert w.ingress_trace("dev/client", "prod/web") == [
        "0|default|np:prod/pass-first|pass|0",
        "1|__PROFILE__|pro:kns.prod|allow|0",
    ]


def test_c7_kubernetes_isolation_is_the_default_tier_end_of_tier_deny() -> None:
    w = world(K8S_DENY_ALL_PROD)
    assert w.ingress_trace("dev/client", "prod/web") == ["0|default|knp:prod/default-deny|deny|-1"]


def test_c8_calico_types_default_to_egress_for_egress_only_rules_unlike_kubernetes() -> None:
    w = world(
        np(
            "prod",
            "egress-only",
            "  selector: app == 'web'\n  egress: [{action: Allow, destination: {selector: app == 'db'}}]",
        )
    )
    assert w.policy_set.policies[0].types == ("Egress",)
    assert w.allowed("dev/client", "prod/web")  # ingress not isolated
    assert w.allowed("prod/web", "prod/db")
    assert not w.allowed("prod/web", "dev/client")


def test_c8_no_rules_default_to_ingress_and_a_type_without_rules_denies_at_end_of_tier() -> None:
    w = world(
        np("prod", "nothing", "  selector: app == 'web'")
        + np(
            "prod",
            "both",
            "  selector: app == 'db'\n  types: [Ingress, Egress]\n  ingress: [{action: Allow}]",
        )
    )
    by_name = {p.name: p for p in w.policy_set.policies}
    assert by_name["nothing"].types == ("Ingress",)
    assert not w.allowed("dev/client", "prod/web")
    assert w.allowed("prod/web", "dev/client")
    assert w.egress_trace("prod/db", "dev/client") == ["0|default|np:prod/both|deny|-1"]


def test_c8_ingress_and_egress_rules_default_to_both_types() -> None:
    w = world(np("prod", "both", "  ingress: [{action: Allow}]\n  egress: [{action: Allow}]"))
    assert w.policy_set.policies[0].types == ("Ingress", "Egress")


def test_c9_a_calico_network_policy_selects_only_endpoints_of_its_namespace() -> None:
    w = world(np("prod", "deny-web", DENY_WEB_INGRESS))
    assert not w.allowed("dev/client", "prod/web")
    assert w.allowed("prod/web", "dev/web")


def test_c9_a_global_policy_ands_selector_namespace_selector_and_service_account_selector() -> None:
    w = world(
        gnp(
            "frontends-in-prod",
            "  selector: app == 'web'\n  namespaceSelector: env == 'prod'\n  serviceAccountSelector: role == 'frontend'\n  ingress: [{action: Deny}]",
        )
    )
    assert not w.allowed("dev/client", "prod/web")
    assert w.allowed("dev/client", "dev/web")  # namespace env=dev


def test_c9_a_service_account_selector_matches_service_account_labels_not_pod_labels() -> None:
    w = world(gnp("sa", "  serviceAccountSelector: role == 'frontend'\n  ingress: [{action: Deny}]"))
    assert not w.allowed("dev/client", "prod/web")
    assert w.allowed("dev/client", "prod/db")


def test_c10_a_rule_without_source_criteria_matches_any_peer_including_external() -> None:
    w = world(
        np(
            "prod",
            "allow-any",
            "  selector: app == 'web'\n  ingress: [{action: Allow, protocol: TCP, destination: {ports: [8080]}}]",
        )
    )
    assert w.allowed(EXTERNAL, "prod/web", 8080)
    assert not w.allowed(EXTERNAL, "prod/web", 8081)


def test_c10_protocol_and_not_protocol_match_names_case_insensitively_and_numbers() -> None:
    w = world(
        np(
            "prod",
            "protos",
            """
  selector: app == 'web'
  ingress:
  - {action: Allow, protocol: udp}
  - {action: Allow, protocol: 132}
  - {action: Deny, notProtocol: TCP}
""",
        )
    )
    assert w.ingress_trace("dev/client", "prod/web", 53, "udp") == ["0|default|np:prod/protos|allow|0"]
    assert w.ingress_trace("dev/client", "prod/web", 9, "sctp") == ["0|default|np:prod/protos|allow|1"]
    assert w.ingress_trace("dev/client", "prod/web", 1, "icmp") == ["0|default|np:prod/protos|deny|2"]
    assert w.ingress_trace("dev/client", "prod/web", 80, "tcp") == ["0|default|np:prod/protos|deny|-1"]


def test_c11_nets_and_not_nets() -> None:
    w = world(
        gnp(
            "nets",
            """
  selector: app == 'web'
  ingress:
  - {action: Allow, source: {nets: [8.8.0.0/16], notNets: [8.8.4.0/24]}}
""",
        )
    )
    assert w.allowed("8.8.8.8", "prod/web")
    assert not w.allowed("8.8.4.4", "prod/web")
    assert not w.allowed("1.1.1.1", "prod/web")


def test_c11_ports_ranges_named_ports_and_not_ports() -> None:
    w = world(
        gnp(
            "ports",
            """
  selector: app == 'web'
  ingress:
  - {action: Allow, protocol: TCP, destination: {ports: ["6040:6050", http]}}
  - {action: Allow, protocol: TCP, destination: {notPorts: [1:1024, 6051]}}
""",
        )
    )
    assert w.ingress_trace("dev/client", "prod/web", 6045) == ["0|default|gnp:ports|allow|0"]
    assert w.ingress_trace("dev/client", "prod/web", 8080) == ["0|default|gnp:ports|allow|0"]  # http
    assert w.ingress_trace("dev/client", "prod/web", 9000) == ["0|default|gnp:ports|allow|1"]
    assert not w.allowed("dev/client", "prod/web", 443)
    assert not w.allowed("dev/client", "prod/web", 6051)


def test_c11_selectors_match_known_endpoints_only_never_external_addresses() -> None:
    w = world(
        gnp("all-sel", "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: all()}}]")
    )
    assert w.allowed("dev/client", "prod/web")
    assert not w.allowed(EXTERNAL, "prod/web")


def test_c11_a_namespaced_rule_selector_is_limited_to_the_policy_namespace() -> None:
    w = world(
        np(
            "prod",
            "same-ns",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: app == 'web' || app == 'db'}}]",
        )
    )
    assert w.allowed("prod/db", "prod/web")
    assert not w.allowed("dev/web", "prod/web")


def test_c11_a_rule_namespace_selector_replaces_the_own_namespace_scope() -> None:
    w = world(
        np(
            "prod",
            "allow-tcp-6379",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: app == 'web', namespaceSelector: env == 'dev'}}]",
        )
    )
    assert w.allowed("dev/web", "prod/web")
    assert not w.allowed("prod/web", "prod/web")  # own namespace dropped: env=prod does not match
    assert not w.allowed("dev/client", "prod/web")


def test_c11_a_namespace_selector_alone_matches_every_endpoint_of_the_matching_namespaces() -> None:
    w = world(
        np(
            "prod",
            "from-dev",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {namespaceSelector: env == 'dev'}}]",
        )
    )
    assert w.allowed("dev/client", "prod/web")
    assert not w.allowed("ops/agent", "prod/web")
    assert not w.allowed(EXTERNAL, "prod/web")


def test_c11_namespace_selector_all_matches_namespaced_endpoints_and_global_matches_non_namespaced() -> None:
    text = (
        gnp(
            "all-ns",
            "  order: 1\n  selector: app == 'web'\n  ingress: [{action: Allow, source: {namespaceSelector: all()}}]",
        )
        + gnp(
            "global-sets",
            "  order: 2\n  selector: app == 'db'\n  ingress: [{action: Allow, source: {namespaceSelector: global()}}]",
        )
        + """
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: partners, labels: {kind: partner}}
spec: {nets: [203.0.113.0/24]}
"""
    )
    w = world(text)
    assert w.allowed("ops/agent", "prod/web")
    assert not w.allowed("203.0.113.5", "prod/web")
    assert w.allowed("203.0.113.5", "prod/db")
    assert not w.allowed("ops/agent", "prod/db")


def test_c11_a_rule_with_only_nets_or_ports_is_not_limited_to_the_namespace() -> None:
    w = world(
        np(
            "prod",
            "nets-only",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {nets: [10.0.0.0/8]}}]",
        )
    )
    assert w.allowed("dev/client", "prod/web")
    assert w.allowed("ops/agent", "prod/web")


def test_c11_service_accounts_by_name_and_by_selector_are_anded() -> None:
    w = world(
        np(
            "prod",
            "sa",
            """
  selector: app == 'db'
  ingress:
  - action: Allow
    source:
      serviceAccounts: {names: [web-sa, other], selector: role == 'frontend'}
""",
        )
    )
    assert w.allowed("prod/web", "prod/db")
    assert not w.allowed("dev/web", "prod/db")  # right SA, other namespace (namespaced policy scope)
    assert not w.allowed("prod/tagged", "prod/db")


def test_c11_service_account_selector_sees_service_account_labels_and_its_name() -> None:
    w = world(
        gnp(
            "sa-name",
            "  selector: app == 'db'\n  ingress: [{action: Allow, source: {serviceAccounts: {selector: projectcalico.org/name == 'agent'}}}]",
        )
    )
    assert w.allowed("ops/agent", "prod/db")
    assert not w.allowed("prod/web", "prod/db")


def test_c11_not_selector_in_a_global_policy_matches_everything_but_the_selected_endpoints() -> None:
    w = world(
        gnp(
            "not-debug",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {notSelector: has(debug)}}]",
        )
    )
    assert w.allowed(EXTERNAL, "prod/web")
    assert w.allowed("dev/client", "prod/web")
    assert not w.allowed("prod/tagged", "prod/web")


def test_c11_not_selector_in_a_namespaced_policy_means_endpoints_of_the_namespace_that_do_not_match() -> None:
    w = world(
        np(
            "prod",
            "not-debug",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {notSelector: has(debug)}}]",
        )
    )
    assert w.allowed("prod/db", "prod/web")
    assert not w.allowed("prod/tagged", "prod/web")
    assert not w.allowed("dev/client", "prod/web")
    assert not w.allowed(EXTERNAL, "prod/web")


def test_c11_selector_not_has_is_not_the_same_as_not_selector_has() -> None:
    w = world(
        gnp(
            "sel-not",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: '!has(debug)'}}]",
        )
    )
    assert w.allowed("dev/client", "prod/web")
    assert not w.allowed(EXTERNAL, "prod/web")


def test_c11_network_sets_are_selectable_by_their_labels_and_matched_by_ip() -> None:
    w = world(
        np(
            "prod",
            "from-partners",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {selector: role == 'partner'}}]",
        )
        + """
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: partners, namespace: prod, labels: {role: partner}}
spec: {nets: [198.51.100.0/24]}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: partners, namespace: dev, labels: {role: partner}}
spec: {nets: [192.0.2.0/24]}
"""
    )
    assert w.allowed("198.51.100.7", "prod/web")
    assert not w.allowed("192.0.2.7", "prod/web")  # a network set of another namespace is out of scope
    assert not w.allowed("203.0.113.1", "prod/web")


def test_l2_calico_not_equal_and_not_in_are_true_when_the_key_is_absent() -> None:
    w = world(
        gnp(
            "ops",
            """
  selector: app == 'web'
  ingress:
  - {action: Deny, source: {selector: "debug != 'true' && app not in {'client'} && has(app)"}}
  - {action: Allow}
""",
        )
    )
    assert not w.allowed("prod/db", "prod/web")
    assert w.allowed("prod/tagged", "prod/web")
    assert w.allowed("dev/client", "prod/web")


def test_l3_workloads_carry_calico_implicit_labels() -> None:
    w = world(
        gnp(
            "implicit",
            """
  selector: projectcalico.org/orchestrator == 'k8s' && projectcalico.org/namespace == 'prod'
  ingress:
  - {action: Allow, source: {selector: projectcalico.org/serviceaccount == 'agent'}}
""",
        )
    )
    assert w.allowed("ops/agent", "prod/web")
    assert not w.allowed("dev/client", "prod/web")
    assert w.allowed("dev/client", "dev/web")  # not selected: dev is not prod


def test_l3_namespace_selectors_see_projectcalico_name() -> None:
    w = world(
        gnp(
            "by-name",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {namespaceSelector: projectcalico.org/name == 'ops'}}]",
        )
    )
    assert w.allowed("ops/agent", "prod/web")
    assert not w.allowed("dev/client", "prod/web")


HOSTS = """
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node1-eth0, labels: {role: node}}
spec: {node: node1, interfaceName: eth0, expectedIPs: [192.168.10.1], profiles: [projectcalico-default-allow]}
"""


def test_c9_a_global_namespace_selector_all_selects_pods_only_and_global_selects_host_endpoints() -> None:
    w = world(
        HOSTS
        + gnp(
            "pods-only",
            "  order: 1\n  namespaceSelector: all()\n  ingress: [{action: Deny, protocol: TCP, destination: {ports: [1]}}]",
        )
        + gnp(
            "hosts-only",
            "  order: 2\n  namespaceSelector: global()\n  ingress: [{action: Deny, protocol: TCP, destination: {ports: [2]}}]",
        )
    )
    assert w.ingress_trace("dev/client", "prod/web", 1) == ["0|default|gnp:pods-only|deny|0"]
    assert w.ingress_trace("dev/client", "prod/web", 2) == ["0|default|gnp:pods-only|deny|-1"]
    assert w.ingress_trace("dev/client", "192.168.10.1", 2) == ["0|default|gnp:hosts-only|deny|0"]
    assert w.ingress_trace("dev/client", "192.168.10.1", 1) == ["0|default|gnp:hosts-only|deny|-1"]


def test_c11_a_rule_namespace_selector_global_matches_host_endpoints_not_pods() -> None:
    w = world(
        HOSTS
        + np(
            "prod",
            "from-hosts",
            "  selector: app == 'web'\n  ingress: [{action: Allow, source: {namespaceSelector: global()}}]",
        )
    )
    assert w.allowed("192.168.10.1", "prod/web")
    assert not w.allowed("prod/db", "prod/web")


def test_c10_icmp_criteria_are_ignored_gracefully_with_a_note() -> None:
    w = world(
        gnp(
            "ping",
            "  selector: app == 'web'\n  ingress: [{action: Allow, protocol: ICMP, icmp: {type: 8, code: 0}}]",
        )
    )
    conn = w.connection("dev/client", "prod/web", 0, "icmp")
    assert conn.ingress.enforced_hits == ("0|default|gnp:ping|allow|0",)
    assert any("ICMP type/code" in n for n in conn.ingress.notes)
    assert not w.allowed("dev/client", "prod/web", 80, "tcp")


def test_explain_walks_each_tier_in_plain_words() -> None:
    w = world(
        tier("security", 10)
        + gnp("security.pass", "  tier: security\n  selector: all()\n  ingress: [{action: Pass}]")
        + np("prod", "deny-web", DENY_WEB_INGRESS)
    )
    expl = w.ev.explain(w.ep("dev/client"), w.ep("prod/web"), "tcp", 80)
    assert expl.connection.action == "deny"
    text = "\n".join(expl.ingress_steps)
    assert "Tier security (order 10) applies" in text
    assert "Pass skips the rest of tier security" in text
    assert "NetworkPolicy prod/deny-web ingress rule 0 (Deny): matches; the connection is denied" in text
    assert any("no policy selects dev/client for egress" in s for s in expl.egress_steps)
