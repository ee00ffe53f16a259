"""Goldmane ``Flow`` messages as emitter lines, and their dedupe key.

The Goldmane collector receives ``goldmane.Flow`` protobuf messages. It writes each as the line
Goldmane's own emitter would POST (Go ``encoding/json`` of ``proto.Flow``: snake_case keys, a
capitalised ``Key``, enums as integers, zero and empty fields left out), so that the rows go
through the ``goldmane`` format of :mod:`flowlens.formats` like any emitter file: one parser,
one set of checks, the same columns whether the flows came by file, by push or by stream.

:func:`flow_digest` is the dedupe key of a flow within its bucket (see
:mod:`flowlens.collect.buckets`): 8 bytes of XXH3 over the flow key's deterministic protobuf
encoding and the bucket's end.

This module needs no protobuf import: it reads each message's fields from its own descriptor.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import xxhash

from flowlens.collect.buckets import DIGEST_BYTES

if TYPE_CHECKING:
    from google.protobuf.message import Message

    from flowlens.collect.proto.goldmane_pb2 import Flow

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


# Per message type: its fields in number order (as Go's struct), and whether each holds messages.
_FIELDS: dict[str, list[tuple[str, bool, bool]]] = {}


def _fields(message: Message) -> list[tuple[str, bool, bool]]:
    descriptor = message.DESCRIPTOR
    found = _FIELDS.get(descriptor.full_name)
    if found is None:
        found = _FIELDS[descriptor.full_name] = [
            (f.name, f.message_type is not None, f.is_repeated) for f in descriptor.fields
        ]
    return found


def message_object(message: Message) -> dict[str, Any]:
    """A message as Go's ``encoding/json`` writes the struct protoc generates for it: the proto
    field names as keys, enums as numbers, zero and empty fields left out (``omitempty``)."""
    out: dict[str, Any] = {}
    for name, holds_messages, repeated in _fields(message):
        value = getattr(message, name)
        if holds_messages:
            if repeated:
                if value:
                    out[name] = [message_object(m) for m in value]
            elif message.HasField(name):
                out[name] = message_object(value)
        elif repeated:
            if value:
                out[name] = list(value)
        elif value:
            out[name] = value
    return out


def flow_line(flow: Flow) -> bytes:
    """``flow`` as one emitter line, newline included."""
    return _dumps(message_object(flow)).encode("utf-8") + b"\n"


def flow_digest(flow: Flow) -> bytes:
    """The dedupe key of ``flow`` within its bucket (the bucket start is kept beside it)."""
    h = xxhash.xxh3_64(flow.Key.SerializeToString(deterministic=True))
    h.update(flow.end_time.to_bytes(8, "little", signed=True))
    return h.digest()[:DIGEST_BYTES]
