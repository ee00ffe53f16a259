"""The settings of the Spark engine, which the command line reads and the engine uses.

Owns :class:`SparkSettings`: the master and the ``KEY=VALUE`` settings of ``--spark-master`` and
``--spark-conf``. Kept apart from :mod:`flowlens.engine.spark` so that choosing an engine loads
neither pyspark nor the Spark engine.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from flowlens.errors import UsageError


@dataclass(frozen=True)
class SparkSettings:
    """How to get a Spark session: ``master`` (None: the one ``spark-submit`` set, else
    ``local[*]``) and ``conf`` settings (``KEY=VALUE`` pairs, on top of ``spark-defaults.conf``)."""

    master: str | None = None
    conf: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, master: str | None, conf: Iterable[str] = ()) -> SparkSettings:
        """Settings from ``--spark-master`` and ``--spark-conf KEY=VALUE`` text."""
        pairs = []
        for item in conf:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--spark-conf {item!r}: give KEY=VALUE, e.g. spark.executor.memory=4g")
            pairs.append((key.strip(), value.strip()))
        return cls(master=master, conf=tuple(pairs))
