"""Finding the endpoint a person names: ``explain --from/--to``.

Owns :func:`lookup_endpoint`: ``NAMESPACE/WORKLOAD`` or an IP address, looked up in the
inventory and the policy set (through :meth:`flowlens.policy.Evaluator.endpoint`), then in the
flows of the store (the named query ``policy-endpoints``: a pod name, an aggregated name such as
``frontend-7d4f8c9b5-*``, a name prefix or an ``app`` label value), so that ``explain`` works
without an inventory on the labels the flow logs recorded.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING

from flowlens.errors import PolicyError, UsageError
from flowlens.policy.evaluate import Evaluator
from flowlens.policy.model import Endpoint
from flowlens.policy.simulate import endpoint_from_record
from flowlens.store import Store

if TYPE_CHECKING:
    from flowlens.engine.choice import EngineChoice


def lookup_endpoint(
    text: str,
    evaluator: Evaluator,
    store: Store,
    *,
    name: str = "endpoint",
    engine: EngineChoice | None = None,
) -> Endpoint:
    """The endpoint ``text`` names: via the inventory and the policies, then the store's flows.

    An address the inventory and policies do not know is looked up in the store (to find its
    recorded identity) and else taken as outside the cluster. ``name`` is how errors call the
    value (``--from``); ``engine`` the engine that reads the store (DuckDB unless it says Spark). Raises :class:`UsageError` when nothing matches.
    """
    text = text.strip()
    is_ip = True
    try:
        ipaddress.ip_address(text)
    except ValueError:
        is_ip = False
    if is_ip or evaluator.inventory is not None:
        try:
            endpoint = evaluator.endpoint(text)
        except PolicyError:
            endpoint = None
        if endpoint is not None and (endpoint.kind != "net" or not store.flow_files()):
            return endpoint
    namespace, sep, workload = text.partition("/")
    params = {"ip": text} if is_ip else {"namespace": namespace, "workload": workload}
    if not is_ip and not sep:
        raise UsageError(f"{name} {text!r}: give NAMESPACE/WORKLOAD or an IP address")
    if store.flow_files():
        from flowlens.engine import open_engine  # an engine only when the store has flows to look in

        with open_engine(store, engine) as opened:
            rows = opened.run("policy-endpoints", params, limit=1).to_pylist()
        if rows:
            r = rows[0]
            return endpoint_from_record(
                r["type"], r["namespace"], r["name"], r["name_aggr"], r["ip"], r["labels"]
            )
    if is_ip:
        return evaluator.endpoint(text)
    raise UsageError(
        f"{name} {text!r}: no such workload in the inventory or the flow store; give --inventory "
        "(kubectl get namespaces,pods,serviceaccounts -A -o yaml) or check the name"
    )
