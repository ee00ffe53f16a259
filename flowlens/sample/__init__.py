"""A sample cluster and a realistic flow-log generator in every format flowlens reads.

* :mod:`flowlens.sample.model`: the cluster model (``cluster.yaml``) -> frozen dataclasses;
* :mod:`flowlens.sample.inventory`: the model as ``kubectl get namespaces,pods,serviceaccounts``;
* :mod:`flowlens.sample.records`: members, verdicts and Felix's records;
* :mod:`flowlens.sample.schedule`: when traffic happens (daily shapes, flush seconds);
* :mod:`flowlens.sample.traffic`: the simulation (Felix's intervals, reporters, aggregation);
* :mod:`flowlens.sample.decide`: decisions from the policy engine;
* :mod:`flowlens.sample.render`: Enterprise, Elasticsearch, Goldmane and Whisker encodings;
* :mod:`flowlens.sample.generate`: streaming generation and the files on disk;
* :mod:`flowlens.sample.logfiles`: each node's rotated ``flows.log`` and its vectored writes;
* :mod:`flowlens.sample.folder`: a whole sample folder (logs, inventory, policies, model).
"""

from flowlens.sample.folder import (
    BUNDLED_START,
    is_sample_folder,
    sample_days,
    write_bundled_sample,
    write_sample_folder,
)
from flowlens.sample.generate import (
    DEFAULT_DAYS,
    DEFAULT_SEED,
    FORMATS,
    SampleOptions,
    SampleSummary,
    default_decisions,
    estimate_days,
    floor_start,
    intervals,
    iter_chunks,
    iter_lines,
    write_sample,
)
from flowlens.sample.inventory import inventory_objects, render_inventory
from flowlens.sample.model import DEFAULT_MODEL, ClusterModel, load_model, parse_model
from flowlens.sample.records import Verdict, declared_decisions

__all__ = [
    "BUNDLED_START",
    "DEFAULT_DAYS",
    "DEFAULT_MODEL",
    "DEFAULT_SEED",
    "FORMATS",
    "ClusterModel",
    "SampleOptions",
    "SampleSummary",
    "Verdict",
    "declared_decisions",
    "default_decisions",
    "estimate_days",
    "floor_start",
    "intervals",
    "inventory_objects",
    "is_sample_folder",
    "iter_chunks",
    "iter_lines",
    "load_model",
    "parse_model",
    "render_inventory",
    "sample_days",
    "write_bundled_sample",
    "write_sample",
    "write_sample_folder",
]
