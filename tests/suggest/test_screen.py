"""The screening: each suspicious shape is held back with its evidence, real traffic of the same
shape is kept, thresholds and --hold-back tune it, and --admit keeps what it names."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from flowlens.errors import UsageError
from flowlens.policy.inventory import load_inventory
from flowlens.suggest import SuggestOptions, suggest
from flowlens.suggest.admit import parse_admit
from flowlens.suggest.screen import ScreenOptions
from tests.factories import T0
from tests.suggest.helpers import pod_side, report_rows
from tests.suggest.helpers.probes import probe_rows, steady_rows


def _suggest(rows: list[dict[str, Any]], inventory: Any = None, **screen: Any):
    namespaces = screen.pop("namespaces", ("shop",))
    options = SuggestOptions(namespaces=namespaces, screen=ScreenOptions(**screen))
    return suggest(report_rows(rows), options, inventory)


def _held(s) -> list[tuple[str, int]]:
    assert s.plan.screening is not None
    return [(g.kind, len(g.edges)) for g in s.plan.screening.held_back]


def _ingress_ports(s, policy: str) -> list[Any]:
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(s.stream())}
    return [r.get("ports") for r in docs[policy]["spec"].get("ingress", [])]


FRONTEND = pod_side("source", "frontend", "shop")
BACKEND = pod_side("dest", "backend", "shop")


def test_the_issues_port_scan_is_held_back_and_the_real_port_kept() -> None:
    rows = steady_rows(FRONTEND, BACKEND, 8080)
    rows += probe_rows(FRONTEND, BACKEND, range(8081, 8286), at=T0 + dt.timedelta(hours=2))
    s = _suggest(rows)
    assert _held(s) == [("port-scan", 205)]
    group = s.plan.screening.held_back[0]
    assert group.text == (
        "app=frontend (shop) -> app=backend (shop): 205 ports in 5 min, 1 connection each, "
        "120 bytes per connection: looks like a port scan"
    )
    assert group.token == "shop/app=frontend->shop/app=backend@tcp/8081-8285"
    assert _ingress_ports(s, "flowlens.backend") == [[{"protocol": "TCP", "port": 8080}]]
    assert "held back: app=frontend (shop) -> app=backend (shop): 205 ports" in s.stream()
    assert "admit: shop/app=frontend->shop/app=backend@tcp/8081-8285" in s.stream()


def test_a_port_the_scanner_tried_in_another_interval_too_is_held_back_with_its_scan() -> None:
    rows = steady_rows(FRONTEND, BACKEND, 8080)
    # denied twice an hour before the scan, then scanned with the rest
    rows += probe_rows(FRONTEND, BACKEND, [8100], connections=2, action="deny", reporters=("dst",))
    rows += probe_rows(FRONTEND, BACKEND, range(8090, 8110), at=T0 + dt.timedelta(hours=1))
    s = _suggest(rows)
    assert _held(s) == [("port-scan", 20)]
    assert s.plan.screening.held_back[0].why == (
        "19 ports in 5 min, 1 connection each, 120 bytes per connection, "
        "and 1 more tried in other intervals too: looks like a port scan"
    )
    assert _ingress_ports(s, "flowlens.backend") == [[{"protocol": "TCP", "port": 8080}]]


def test_a_scanning_source_keeps_a_port_it_uses_for_real_with_tiny_connections() -> None:
    # health checks: tiny, but dozens of connections in every interval; a retry is a few
    rows = steady_rows(FRONTEND, BACKEND, 8080, connections=30, connection_bytes=200)
    rows += probe_rows(FRONTEND, BACKEND, range(8090, 8110), at=T0 + dt.timedelta(hours=1))
    s = _suggest(rows)
    assert _held(s) == [("port-scan", 20)]
    assert _ingress_ports(s, "flowlens.backend") == [[{"protocol": "TCP", "port": 8080}]]


def test_a_service_scan_that_grabs_banners_is_still_a_port_scan() -> None:
    rows = steady_rows(FRONTEND, BACKEND, 8080)
    rows += probe_rows(
        FRONTEND, BACKEND, [22, 25, 80, 443, 3306, 5432, 6379, 9200, 11211, 27017], connection_bytes=2500
    )
    assert _held(_suggest(rows)) == [("port-scan", 10)]


def test_fewer_ports_than_the_threshold_are_not_a_scan_and_the_threshold_is_tunable() -> None:
    rows = probe_rows(FRONTEND, BACKEND, range(9000, 9009), connection_bytes=2500)
    assert _held(_suggest(rows)) == []
    assert _held(_suggest(rows, scan_ports=9)) == [("port-scan", 9)]
    assert _held(_suggest(rows, scan_ports=0)) == []


def test_a_host_sweep_is_one_group_with_every_destination() -> None:
    rows = steady_rows(FRONTEND, BACKEND, 8080)
    for i in range(12):
        rows += probe_rows(FRONTEND, pod_side("dest", f"svc{i}", "shop"), [22])
    s = _suggest(rows)
    assert _held(s) == [("host-sweep", 12)]
    group = s.plan.screening.held_back[0]
    assert group.dest is None and group.token == "shop/app=frontend->*@tcp/22"
    assert "12 destinations on tcp/22" in group.why and "looks like a host sweep" in group.why


def test_a_scraper_reaching_many_pods_on_one_port_is_kept() -> None:
    prometheus = pod_side("source", "prometheus", "monitoring")
    rows = []
    for i in range(30):
        # one kept-alive connection per target, scraped all day: few connections, real bytes
        rows += steady_rows(
            prometheus, pod_side("dest", f"svc{i}", "shop"), 9090, connections=1, intervals=24
        )
    for i in range(11):
        # short-lived pods it reached only briefly, with next to nothing said
        rows += probe_rows(prometheus, pod_side("dest", f"job{i}", "shop"), [9090], connection_bytes=200)
        rows += probe_rows(
            prometheus,
            pod_side("dest", f"job{i}", "shop"),
            [9090],
            connection_bytes=200,
            at=T0 + dt.timedelta(hours=1),
        )
    s = _suggest(rows, namespaces=("shop", "monitoring"))
    assert _held(s) == []


def test_probes_of_a_source_whose_traffic_is_mostly_denied_are_held_back() -> None:
    rows = []
    for i in range(6):
        rows += probe_rows(
            FRONTEND, pod_side("dest", f"db{i}", "shop"), [5432], action="deny", reporters=("dst",)
        )
    probe = probe_rows(FRONTEND, BACKEND, [8080])
    probe += probe_rows(FRONTEND, BACKEND, [8080], at=T0 + dt.timedelta(hours=3))
    s = _suggest(rows + probe)
    assert _held(s) == [("denied-source", 1)]
    assert "75% of this source's 8 connections were denied" in s.plan.screening.held_back[0].why
    assert _held(_suggest(rows + probe, denied_share=0.0)) == []
    assert _held(_suggest(rows + probe, denied_share=0.9)) == []


def test_a_one_off_probe_is_held_back_and_a_steady_or_substantial_edge_is_not() -> None:
    assert _held(_suggest(probe_rows(FRONTEND, BACKEND, [5432]))) == [("one-off", 1)]
    assert _held(_suggest(probe_rows(FRONTEND, BACKEND, [5432], connection_bytes=2000))) == []
    twice = steady_rows(FRONTEND, BACKEND, 5432, connections=1, connection_bytes=120, intervals=2)
    assert _held(_suggest(twice)) == []
    assert _held(_suggest(twice, one_off_intervals=2)) == [("one-off", 1)]
    # no bytes logged at all: nothing says the connections were tiny
    silent = probe_rows(FRONTEND, BACKEND, [5432], connection_bytes=0)
    assert _held(_suggest(silent)) == []


def test_a_batch_job_seen_once_that_moves_data_is_kept() -> None:
    job = pod_side("source", "nightly-export", "shop")
    rows = probe_rows(job, pod_side("dest", "postgres", "shop"), [5432], connection_bytes=3_000_000)
    for i in range(12):
        rows += probe_rows(job, pod_side("dest", f"store{i}", "shop"), [443], connection_bytes=500_000)
    assert _held(_suggest(rows)) == []


def test_dns_to_the_cluster_resolver_is_never_held_back() -> None:
    coredns = pod_side("dest", "coredns", "kube-system", {"k8s-app": "kube-dns"})
    s = _suggest(probe_rows(FRONTEND, coredns, [53], proto="udp", reporters=("src",)))
    assert _held(s) == []
    assert s.plan.namespaces[0].dns_evidence


def test_tiny_traffic_to_a_port_no_container_declares_is_held_back_with_the_inventory(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": "backend-1", "namespace": "shop", "labels": {"app": "backend"}},
                        "spec": {"containers": [{"name": "api", "ports": [{"containerPort": 8080}]}]},
                    }
                ],
            }
        )
    )
    inv = load_inventory([inventory])
    refused = steady_rows(FRONTEND, BACKEND, 8081, connections=20, connection_bytes=100)
    real = steady_rows(FRONTEND, BACKEND, 8080)
    undeclared_but_answering = steady_rows(FRONTEND, BACKEND, 9090, connections=2, connection_bytes=5000)
    s = _suggest(refused + real + undeclared_but_answering, inv)
    assert _held(s) == [("no-listener", 1)]
    assert "no container of the pods declares (they declare tcp/8080)" in s.plan.screening.held_back[0].why
    assert _held(_suggest(refused + real + undeclared_but_answering)) == []


def test_hold_back_none_and_admit_held_keep_everything_but_still_list_it() -> None:
    rows = steady_rows(FRONTEND, BACKEND, 8080) + probe_rows(FRONTEND, BACKEND, range(8081, 8100))
    assert _held(_suggest(rows, classes=())) == []
    s = _suggest(rows, admit_all=True)
    assert _held(s) == [] and [g.kind for g in s.plan.screening.admitted] == ["port-scan"]
    text = s.stream()
    assert "ADMITTED: held back (19 ports in 5 min" in text
    assert "admitted: app=frontend (shop) -> app=backend (shop)" in text


def test_admit_keeps_only_the_edges_it_names_and_the_rest_stays_held() -> None:
    rows = steady_rows(FRONTEND, BACKEND, 8080) + probe_rows(FRONTEND, BACKEND, range(8081, 8100))
    s = _suggest(rows, admit=("shop/app=frontend->shop/app=backend@tcp/8081-8082",))
    assert _held(s) == [("port-scan", 17)]
    assert [len(g.edges) for g in s.plan.screening.admitted] == [2]
    assert _ingress_ports(s, "flowlens.backend") == [[{"protocol": "TCP", "port": 8080, "endPort": 8082}]]
    unmatched = _suggest(rows, admit=("shop/app=nobody->*",))
    assert any("matched no held-back edge" in n for n in unmatched.plan.notes)


@pytest.mark.parametrize(
    "bad",
    [
        "frontend",
        "shop/app=frontend",
        "shop/app=frontend->shop/app=backend@tcp/0",
        "shop/app=frontend->shop/app=backend@tcp/90-80",
        "shop/app=frontend->shop/app=backend@8080",
        "Shop/app=x->*",
        "shop/app=x y->*",
        "host:a/b->*",
        "a->b->c",
    ],
)
def test_a_malformed_admit_is_a_usage_error_that_teaches_the_syntax(bad: str) -> None:
    with pytest.raises(UsageError, match="SOURCE->DEST"):
        _suggest([], admit=(bad,))


def test_thresholds_out_of_range_are_usage_errors() -> None:
    with pytest.raises(UsageError):
        _suggest([], denied_share=1.5)
    with pytest.raises(UsageError):
        _suggest([], classes=("port-scan", "scan"))
    with pytest.raises(UsageError):
        _suggest([], scan_ports=-1)


def test_a_single_dns_query_to_another_resolver_is_not_a_one_off_probe() -> None:
    resolver = {
        "dest_type": "net",
        "dest_namespace": "-",
        "dest_name_aggr": "pvt",
        "dest_labels": {},
        "dest_ip": "10.0.0.2",
    }
    assert _held(_suggest(probe_rows(FRONTEND, resolver, [53], proto="udp", reporters=("src",)))) == []
    assert _held(_suggest(probe_rows(FRONTEND, resolver, [54], proto="udp", reporters=("src",)))) == [
        ("one-off", 1)
    ]


def test_held_back_output_is_the_same_whatever_the_order_of_the_records() -> None:
    rows = steady_rows(FRONTEND, BACKEND, 8080) + probe_rows(FRONTEND, BACKEND, range(8081, 8100))
    for i in range(12):
        rows += probe_rows(FRONTEND, pod_side("dest", f"svc{i}", "shop"), [22])
    first = _suggest(rows).stream()
    for seed in (1, 2):
        shuffled = rows[:]
        random.Random(seed).shuffle(shuffled)
        assert _suggest(shuffled).stream() == first


def test_every_printed_edge_admits_exactly_its_group() -> None:
    rows = steady_rows(FRONTEND, BACKEND, 8080) + probe_rows(FRONTEND, BACKEND, range(8081, 8100))
    for i in range(12):
        rows += probe_rows(FRONTEND, pod_side("dest", f"svc{i}", "shop"), [22])
    s = _suggest(rows)
    assert s.plan.screening is not None
    groups = s.plan.screening.held_back
    assert len(groups) == 2
    for group in groups:
        pattern = parse_admit(group.token)
        assert all(pattern.matches(e) for e in group.edges)
        assert not any(pattern.matches(e) for other in groups if other is not group for e in other.edges)
        admitted = _suggest(rows, admit=(group.token,))
        assert [g.token for g in admitted.plan.screening.held_back] == [
            g.token for g in groups if g is not group
        ]


SCANNER = pod_side("source", "adservice", "shop")
MAILER = pod_side("dest", "mailer", "shop")
CHECKOUT = pod_side("source", "checkout", "shop")


def _mailer_ports(s) -> list[Any]:
    return _ingress_ports(s, "flowlens.mailer")


@pytest.mark.parametrize("probed", [2, 7])
def test_the_port_a_probe_found_open_is_held_back_with_the_probe(probed: int) -> None:
    # The scanner knocks on a few closed ports of the mailer and reads a little from the one that
    # answers (2 connections of 880 bytes: more than a handshake, a banner), all in one interval.
    at = T0 + dt.timedelta(hours=3)
    rows = steady_rows(CHECKOUT, MAILER, 8080)
    rows += probe_rows(SCANNER, MAILER, range(20, 20 + probed), at=at)
    rows += probe_rows(SCANNER, MAILER, [8080], connections=2, connection_bytes=880, at=at)
    s = _suggest(rows)
    assert _held(s) == [("one-off", 1)] * (probed + 1)
    open_port = [g for g in s.plan.screening.held_back if g.edges[0].port.port == 8080]
    assert open_port[0].why == (
        f"2 connections, 880 bytes per connection, seen once, in the interval in which this source "
        f"probed {probed} other ports of the destination: looks like a port the probe found open"
    )
    assert "adservice" not in yaml.safe_dump(_mailer_ports(s))
    docs = {d["metadata"]["name"]: d for d in yaml.safe_load_all(s.stream())}
    assert "flowlens.adservice" not in docs or not docs["flowlens.adservice"]["spec"].get("egress")


def test_a_short_call_is_kept_when_the_other_knocks_are_too_few_or_at_another_time() -> None:
    at = T0 + dt.timedelta(hours=3)
    call = probe_rows(SCANNER, MAILER, [8080], connections=2, connection_bytes=880, at=at)
    one_knock = probe_rows(SCANNER, MAILER, [25], at=at)
    knocks_later = probe_rows(SCANNER, MAILER, range(20, 27), at=at + dt.timedelta(hours=1))
    for rows in (call + one_knock, call + knocks_later):
        s = _suggest(rows)
        held_ports = {e.port.port for g in s.plan.screening.held_back for e in g.edges}
        assert 8080 not in held_ports
