"""Example records from Calico's own sources (test data and docs), one line each."""

from __future__ import annotations

EXAMPLE_A = r"""{"start_time":1564190129,"end_time":1564190433,"source_ip":null,"source_name":"-","source_name_aggr":"tigera-fluentd-node-*","source_namespace":"calico-monitoring","source_port":null,"source_type":"wep","source_labels":{"labels":["controller-revision-hash=8fdd9c546","k8s-app=tigera-fluentd-node","pod-template-generation=1"]},"dest_ip":null,"dest_name":"-","dest_name_aggr":"es-client-tigera-elasticsearch-68c4646c5d-*","dest_namespace":"calico-monitoring","dest_port":9200,"dest_type":"wep","dest_labels":{"labels":["pod-template-hash=68c4646c5d","role=client","cluster=tigera-elasticsearch","component=elasticsearch-tigera-elasticsearch","name=es-client-tigera-elasticsearch"]},"proto":"tcp","action":"allow","reporter":"src","policies":{"all_policies":["1|__PROFILE__|__PROFILE__.kns.calico-monitoring|allow"]},"bytes_in":8791,"bytes_out":36934,"num_flows":1,"num_flows_started":1,"num_flows_completed":1,"packets_in":9,"packets_out":11,"http_requests_allowed_in":0,"http_requests_denied_in":0,"host":"tigera-fluentd-node-qxdr7"}"""

EXAMPLE_B = r"""{"start_time":1675468688,"end_time":1675469001,"source_ip":null,"source_name":"-","source_name_aggr":"pvt","source_namespace":"-","nat_outgoing_ports":null,"source_port":null,"source_type":"net","source_labels":{"labels":[]},"dest_ip":null,"dest_name":"-","dest_name_aggr":"coredns-565d847f94-*","dest_namespace":"kube-system","dest_port":53,"dest_type":"wep","dest_labels":{"labels":["k8s-app=kube-dns","pod-template-hash=565d847f94"]},"dest_service_namespace":"-","dest_service_name":"-","dest_service_port":"-","dest_service_port_num":null,"dest_domains":null,"proto":"udp","action":"allow","reporter":"dst","policies":{"all_policies":["0|allow-tigera|kube-system/allow-tigera.cluster-dns|pass|1","1|__PROFILE__|__PROFILE__.kns.kube-system|allow|0"],"enforced_policies":["0|allow-tigera|kube-system/allow-tigera.cluster-dns|pass|1","1|__PROFILE__|__PROFILE__.kns.kube-system|allow|0"],"pending_policies":["0|allow-tigera|kube-system/allow-tigera.cluster-dns|pass|1","1|__PROFILE__|__PROFILE__.kns.kube-system|allow|0"]},"bytes_in":8052,"bytes_out":14091,"num_flows":72,"num_flows_started":66,"num_flows_completed":66,"packets_in":66,"packets_out":66,"http_requests_allowed_in":0,"http_requests_denied_in":0,"process_name":"-","num_process_names":0,"process_id":"-","num_process_ids":0,"process_args":["-"],"num_process_args":0,"original_source_ips":null,"num_original_source_ips":0,"tcp_mean_send_congestion_window":0,"tcp_min_send_congestion_window":0,"tcp_mean_smooth_rtt":0,"tcp_max_smooth_rtt":0,"tcp_mean_min_rtt":0,"tcp_max_min_rtt":0,"tcp_mean_mss":0,"tcp_min_mss":0,"tcp_total_retransmissions":0,"tcp_lost_packets":0,"tcp_unrecovered_to":0,"host":"asincu-bz-z2z1-kadm-infra-0","@timestamp":1675469001000}"""

EXAMPLE_C = r"""{"start_time":1675468688,"end_time":1675469001,"source_ip":null,"source_name":"-","source_name_aggr":"compliance-benchmarker-*","source_namespace":"tigera-compliance","nat_outgoing_ports":null,"source_port":null,"source_type":"wep","source_labels":{"labels":["k8s-app=compliance-benchmarker","pod-template-generation=2","app.kubernetes.io/name=compliance-benchmarker","controller-revision-hash=6bd8f5688f"]},"dest_ip":null,"dest_name":"-","dest_name_aggr":"coredns-565d847f94-*","dest_namespace":"kube-system","dest_port":53,"dest_type":"wep","dest_labels":{"labels":["k8s-app=kube-dns","pod-template-hash=565d847f94"]},"dest_service_namespace":"kube-system","dest_service_name":"kube-dns","dest_service_port":"dns","dest_service_port_num":53,"dest_domains":null,"proto":"udp","action":"allow","reporter":"dst","policies":{"all_policies":["0|allow-tigera|kube-system/allow-tigera.cluster-dns|allow|0"],"enforced_policies":["0|allow-tigera|kube-system/allow-tigera.cluster-dns|allow|0"],"pending_policies":["0|allow-tigera|kube-system/allow-tigera.cluster-dns|allow|0"]},"bytes_in":4416,"bytes_out":7710,"num_flows":36,"num_flows_started":36,"num_flows_completed":30,"packets_in":36,"packets_out":36,"http_requests_allowed_in":0,"http_requests_denied_in":0,"process_name":"-","num_process_names":0,"process_id":"-","num_process_ids":0,"process_args":["-"],"num_process_args":0,"original_source_ips":null,"num_original_source_ips":0,"tcp_mean_send_congestion_window":0,"tcp_min_send_congestion_window":0,"tcp_mean_smooth_rtt":0,"tcp_max_smooth_rtt":0,"tcp_mean_min_rtt":0,"tcp_max_min_rtt":0,"tcp_mean_mss":0,"tcp_min_mss":0,"tcp_total_retransmissions":0,"tcp_lost_packets":0,"tcp_unrecovered_to":0,"host":"asincu-bz-z2z1-kadm-infra-0","@timestamp":1675469001000}"""

EXAMPLE_D = r"""{"start_time":1597166083,"end_time":1597166383,"source_ip":"192.168.47.9","source_name":"access-6b687c8dcb-zn5s2","source_name_aggr":"access-6b687c8dcb-*","source_namespace":"policy-demo","source_port":42106,"source_type":"wep","source_labels":{"labels":["pod-template-hash=6b687c8dcb","app=access"]},"dest_ip":"192.168.138.79","dest_name":"nginx-86c57db685-h6792","dest_name_aggr":"nginx-86c57db685-*","dest_namespace":"policy-demo","dest_port":80,"dest_type":"wep","dest_labels":{"labels":["pod-template-hash=86c57db685","app=nginx"]},"proto":"tcp","action":"allow","reporter":"dst","policies":{"all_policies":["0|tier1|ns1/tier1.policy1|pass|3","1|tier2|ns2/staged:tier1.policy1|deny|1","2|default|policy-demo/default.access-nginx|allow|2"],"enforced_policies":["0|tier1|ns1/tier1.policy1|pass|3","1|default|policy-demo/default.access-nginx|allow|2"],"pending_policies":["0|tier1|ns1/tier1.policy1|pass|3","1|tier2|ns2/staged:tier1.policy1|deny|1"]},"bytes_in":388,"bytes_out":1113,"num_flows":1,"num_flows_started":1,"num_flows_completed":1,"packets_in":6,"packets_out":5,"http_requests_allowed_in":0,"http_requests_denied_in":0,"original_source_ips":null,"num_original_source_ips":0,"host":"bz-n8kf-kadm-node-1","@timestamp":1597166383000}"""

GOLDMANE_EXAMPLE = r"""{"Key":{"source_name":"client-7d4f8c9b5-*","source_namespace":"demo","source_type":1,"dest_name":"nginx-86c57db685-*","dest_namespace":"demo","dest_type":1,"dest_port":80,"dest_service_name":"nginx","dest_service_namespace":"demo","dest_service_port_name":"-","dest_service_port":80,"proto":"tcp","reporter":2,"action":1,"policies":{"enforced_policies":[{"kind":6,"namespace":"demo","name":"allow-client","tier":"default","action":1}],"pending_policies":[{"kind":6,"namespace":"demo","name":"allow-client","tier":"default","action":1}]}},"start_time":1767225600,"end_time":1767225900,"source_labels":["app=client","pod-template-hash=7d4f8c9b5"],"dest_labels":["app=nginx"],"packets_in":12,"packets_out":10,"bytes_in":1800,"bytes_out":900,"num_connections_started":2,"num_connections_completed":2,"num_connections_live":2}"""

WHISKER_ITEM = {
    "start_time": "2026-01-01T00:00:00Z",
    "end_time": "2026-01-01T00:05:00Z",
    "action": "Allow",
    "source_name": "client-7d4f8c9b5-*",
    "source_namespace": "demo",
    "source_labels": "app=client | pod-template-hash=7d4f8c9b5",
    "dest_name": "nginx-86c57db685-*",
    "dest_namespace": "demo",
    "dest_labels": "app=nginx",
    "protocol": "tcp",
    "dest_port": 80,
    "reporter": "Dst",
    "policies": {
        "enforced": [
            {
                "kind": "NetworkPolicy",
                "name": "allow-client",
                "namespace": "demo",
                "tier": "default",
                "action": "Allow",
                "policy_index": 0,
                "rule_index": 0,
                "trigger": None,
            }
        ],
        "pending": [
            {
                "kind": "EndOfTier",
                "name": "",
                "namespace": "",
                "tier": "security",
                "action": "Deny",
                "policy_index": 0,
                "rule_index": -1,
                "trigger": {
                    "kind": "StagedNetworkPolicy",
                    "name": "security.lockdown",
                    "namespace": "demo",
                    "tier": "security",
                    "action": "Deny",
                    "policy_index": 0,
                    "rule_index": 0,
                    "trigger": None,
                },
            }
        ],
    },
    "packets_in": 12,
    "packets_out": 10,
    "bytes_in": 1800,
    "bytes_out": 900,
}

WHISKER_PUBLIC = {
    **WHISKER_ITEM,
    "action": "Deny",
    "source_name": "PUBLIC NETWORK",
    "source_namespace": "",
    "source_labels": "",
    "reporter": "Dst",
    "policies": {
        "enforced": [
            {
                "kind": "EndOfTier",
                "tier": "default",
                "action": "Deny",
                "policy_index": 0,
                "rule_index": -1,
                "trigger": {
                    "kind": "NetworkPolicy",
                    "name": "default-deny",
                    "namespace": "demo",
                    "tier": "default",
                },
            }
        ],
        "pending": [],
    },
}
