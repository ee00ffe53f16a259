"""A Goldmane for the tests: a real gRPC server (grpcio, the generated ``goldmane.Flows``
service, mutual TLS) serving flows of the sample cluster from 15-second buckets held in memory,
with Goldmane's semantics:

* ``List`` aggregates each flow key over the buckets whose start lies in ``[gte, lt)`` (0 means
  the oldest bucket and "now"), newest first, ties by id (newest id first), paginated;
* ``Stream`` sends every bucket from ``start_time_gte`` up to the one due next (its backfill),
  then each bucket once as :meth:`FakeGoldmane.rollover` rolls it over;
* the ring keeps :attr:`FakeGoldmane.keep` buckets: older ones are forgotten.

Streams can be broken on purpose (:meth:`FakeGoldmane.break_streams`), and the server stopped and
started again on the same port (:class:`GoldmaneServer`)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf import json_format

from flowlens.collect.proto import goldmane_pb2 as pb
from flowlens.collect.proto import goldmane_pb2_grpc as pb_grpc
from flowlens.sample import SampleOptions, iter_lines, load_model
from tests.collect.helpers.certs import Pki

BUCKET = 15
COUNTERS = [f.name for f in pb.Flow.DESCRIPTOR.fields if f.name.startswith(("packets_", "bytes_", "num_"))]


def sample_flow_objects(intervals: int, seed: int = 7) -> list[list[dict]]:
    """The emitter objects of the sample cluster, one list per 5-minute interval (about 38 each)."""
    options = SampleOptions(
        start=dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        days=intervals * 300 / 86400,
        seed=seed,
        formats=("goldmane",),
    )
    by_start: dict[int, list[dict]] = {}
    for _, line in iter_lines(load_model(), options, "goldmane"):
        obj = json.loads(line)
        by_start.setdefault(obj["start_time"], []).append(obj)
    return [by_start[k] for k in sorted(by_start)][:intervals]


def bucket_flows(objects: list[dict], bucket: int) -> list[pb.Flow]:
    """``objects`` as flows of the bucket starting at ``bucket``."""
    flows = []
    for obj in objects:
        flow = json_format.ParseDict({**obj, "start_time": bucket, "end_time": bucket + BUCKET}, pb.Flow())
        flows.append(flow)
    return flows


def sample_ring(first_bucket: int, count: int, seed: int = 7) -> dict[int, list[pb.Flow]]:
    """``count`` buckets from ``first_bucket`` on, each with the flows of one sample interval."""
    objects = sample_flow_objects(count, seed)
    return {
        first_bucket + i * BUCKET: bucket_flows(objects[i], first_bucket + i * BUCKET) for i in range(count)
    }


class FakeGoldmane(pb_grpc.FlowsServicer):
    def __init__(self, buckets: dict[int, list[pb.Flow]], next_stream: int, keep: int = 242) -> None:
        self.buckets = dict(buckets)
        self.next_stream = next_stream  # the start of the bucket streamed at the next rollover
        self.keep = keep
        self._cond = threading.Condition()
        self._ids: dict[bytes, int] = {}
        self._broken = 0
        self.list_calls = 0
        self.list_gate = threading.Event()  # List calls past ``list_limit`` wait for it
        self.list_limit: int | None = None
        self.stream_calls = 0
        self.stream_starts: list[int] = []
        self.sent = 0

    def _id(self, flow: pb.Flow) -> int:
        key = flow.Key.SerializeToString(deterministic=True)
        return self._ids.setdefault(key, len(self._ids) + 1)

    # --- control -------------------------------------------------------------------------------

    def rollover(self, flows: list[pb.Flow] | None = None) -> int:
        """Stream the bucket due next (giving it ``flows`` first); its start."""
        with self._cond:
            bucket = self.next_stream
            if flows is not None:
                self.buckets[bucket] = flows
            self.next_stream += BUCKET
            for old in sorted(self.buckets)[: max(0, len(self.buckets) - self.keep)]:
                del self.buckets[old]
            self._cond.notify_all()
            return bucket

    def break_streams(self) -> None:
        """Every open stream ends with UNAVAILABLE."""
        with self._cond:
            self._broken += 1
            self._cond.notify_all()

    def total(self) -> int:
        with self._cond:
            return sum(len(v) for v in self.buckets.values())

    # --- the service -----------------------------------------------------------------------------

    def List(self, request: pb.FlowListRequest, context: grpc.ServicerContext) -> pb.FlowListResult:
        with self._cond:
            self.list_calls += 1
            calls = self.list_calls
        if self.list_limit is not None and calls > self.list_limit:
            self.list_gate.wait(30)
        with self._cond:
            gte = request.start_time_gte or (min(self.buckets) if self.buckets else 0)
            lt = request.start_time_lt or self.next_stream + 2 * BUCKET
            if gte >= lt:
                context.abort(
                    grpc.StatusCode.INVALID_ARGUMENT,
                    f"startTimeGt ({gte}) must be less than startTimeLt ({lt})",
                )
            merged: dict[bytes, pb.Flow] = {}
            for bucket in sorted(b for b in self.buckets if gte <= b < lt and b + BUCKET <= lt):
                for flow in self.buckets[bucket]:
                    key = flow.Key.SerializeToString(deterministic=True)
                    have = merged.get(key)
                    if have is None:
                        merged[key] = pb.Flow()
                        merged[key].CopyFrom(flow)
                        continue
                    for name in COUNTERS:
                        setattr(have, name, getattr(have, name) + getattr(flow, name))
                    have.start_time = min(have.start_time, flow.start_time)
                    have.end_time = max(have.end_time, flow.end_time)
            results = [pb.FlowResult(id=self._id(f), flow=f) for f in merged.values()]
        results.sort(key=lambda r: (r.flow.start_time, r.id), reverse=True)
        total = len(results)
        pages = 1
        if request.page_size > 0:
            pages = -(-total // request.page_size)
            results = results[request.page * request.page_size : (request.page + 1) * request.page_size]
        return pb.FlowListResult(
            meta=pb.ListMetadata(totalPages=pages if total else 0, totalResults=total), flows=results
        )

    def Stream(self, request: pb.FlowStreamRequest, context: grpc.ServicerContext) -> Iterator[pb.FlowResult]:
        with self._cond:
            self.stream_calls += 1
            broken = self._broken
            sent_until = (
                request.start_time_gte - request.start_time_gte % BUCKET
                if request.start_time_gte
                else self.next_stream
            )
            self.stream_starts.append(sent_until)
        while context.is_active():
            with self._cond:
                self._cond.wait_for(
                    lambda until=sent_until: self.next_stream > until or self._broken != broken, timeout=0.2
                )
                if self._broken != broken:
                    context.abort(grpc.StatusCode.UNAVAILABLE, "the test broke the stream")
                batch = [
                    flow
                    for bucket in sorted(b for b in self.buckets if sent_until <= b < self.next_stream)
                    for flow in self.buckets[bucket]
                ]
                ids = [self._id(f) for f in batch]
                sent_until = max(sent_until, self.next_stream)
            for flow, id_ in zip(batch, ids, strict=True):
                self.sent += 1
                yield pb.FlowResult(id=id_, flow=flow)


class GoldmaneServer:
    """A FakeGoldmane served over mutual TLS on 127.0.0.1; stop() and start() keep the port."""

    def __init__(self, fake: FakeGoldmane, pki: Pki, port: int = 0) -> None:
        self.fake = fake
        self.pki = pki
        self.port = port
        self._server: grpc.Server | None = None

    def start(self) -> GoldmaneServer:
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        pb_grpc.add_FlowsServicer_to_server(self.fake, server)
        credentials = grpc.ssl_server_credentials(
            [(Path(self.pki.server_key).read_bytes(), Path(self.pki.server_cert).read_bytes())],
            root_certificates=Path(self.pki.ca).read_bytes(),
            require_client_auth=True,
        )
        self.port = server.add_secure_port(f"127.0.0.1:{self.port}", credentials)
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"
