"""Policy manifests: reading Kubernetes and Calico YAML/JSON into the policy model.

One module per concern, one per API family:

* :mod:`~flowlens.policy.manifests.documents` — files and folders, multi-document YAML and JSON,
  and the field validators whose errors carry a field path (shared by every family);
* :mod:`~flowlens.policy.manifests.networking` — ``networking.k8s.io/v1`` NetworkPolicy,
  converted as Calico converts it;
* :mod:`~flowlens.policy.manifests.calico` — ``projectcalico.org/v3`` kinds: (Global)NetworkPolicy,
  staged policies, Tier, (Global)NetworkSet, HostEndpoint;
* :mod:`~flowlens.policy.manifests.load` — :func:`load_policies`: ``kind: List``, the dispatch by
  API group and kind (:data:`~flowlens.policy.manifests.load.FAMILIES`), replacements, notes;
  :func:`load_candidate`, candidate policies on top of the policies in force.

Another API family (``policy.networking.k8s.io`` ClusterNetworkPolicy and the admin network
policies) goes in a sibling module with ``GROUPS`` and ``KINDS``, registered in ``FAMILIES``.
"""

from flowlens.policy.manifests.calico import GROUPS as CALICO_GROUPS
from flowlens.policy.manifests.documents import MANIFEST_SUFFIXES, manifest_files, read_documents
from flowlens.policy.manifests.load import load_candidate, load_policies, policies_from_objects
from flowlens.policy.manifests.networking import GROUP as K8S_GROUP

__all__ = [
    "CALICO_GROUPS",
    "K8S_GROUP",
    "MANIFEST_SUFFIXES",
    "load_candidate",
    "load_policies",
    "manifest_files",
    "policies_from_objects",
    "read_documents",
]
