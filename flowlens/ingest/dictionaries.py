"""Lasting leaf dictionaries: the strings of the nested columns as codes, batch after batch.

Label sets and policy traces repeat endlessly and hold few distinct strings. Their string leaves
are dictionary-encoded, each against a dictionary that lasts from batch to batch: a take of a
label set or trace then copies 4-byte codes instead of strings, and the Parquet writer puts the
codes straight into its dictionary pages instead of hashing every string again (1 M records:
about 1 s less CPU). The files hold the same Parquet columns as with plain strings.

:data:`WRITE_SCHEMA` is what the writer (:mod:`flowlens.ingest.writer`) is handed: the canonical
schema with those strings (and the provenance columns') encoded.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flowlens.schema import ARROW_SCHEMA, POLICY_COLUMNS

ENCODED_COLUMNS = ("source_labels", "dest_labels", *POLICY_COLUMNS)
# Distinct strings a leaf's dictionary may hold before it starts again from the strings of the
# batch at hand. Each row group's dictionary page holds the whole dictionary, used or not.
LEAF_DICTIONARY_LIMIT = 1024
CODED_STRING = pa.dictionary(pa.int32(), pa.string())


def encoded_type(type_: pa.DataType) -> pa.DataType:
    """``type_`` with each string inside it dictionary-encoded."""
    if pa.types.is_string(type_):
        return CODED_STRING
    if pa.types.is_map(type_):
        return pa.map_(encoded_type(type_.key_type), encoded_type(type_.item_type))
    if pa.types.is_list(type_):
        field = type_.value_field
        return pa.list_(pa.field(field.name, encoded_type(field.type), field.nullable))
    if pa.types.is_struct(type_):
        return pa.struct([pa.field(f.name, encoded_type(f.type), f.nullable) for f in type_])
    return type_


# Provenance columns hold one value (or one per file) for a whole batch: codes into that value.
CODED_PROVENANCE = ("format", "ingest_id", "source_file")

#: What the writer is handed: ARROW_SCHEMA with the strings of ENCODED_COLUMNS and
#: CODED_PROVENANCE dictionary-encoded.
WRITE_SCHEMA = pa.schema(
    [
        pa.field(f.name, encoded_type(f.type)) if f.name in ENCODED_COLUMNS + CODED_PROVENANCE else f
        for f in ARROW_SCHEMA
    ]
)


class LeafDictionaries:
    """One lasting dictionary per string leaf of the nested columns (see ENCODED_COLUMNS), and
    per provenance column (CODED_PROVENANCE)."""

    def __init__(self) -> None:
        self._known: dict[str, tuple[dict[str, int], pa.Array]] = {}

    def _codes(self, leaf: str, strings: pa.Array) -> pa.Array:
        index, dictionary = self._known.get(leaf, ({}, pa.array([], pa.string())))
        # (each distinct string is looked up once: one hash pass over the strings, not two)
        distinct = pc.dictionary_encode(strings)
        if len(distinct.dictionary) > LEAF_DICTIONARY_LIMIT:
            # Too many for any lasting dictionary (a label value per record: a Job's uid): the
            # batch's own strings are the dictionary, with no Python work per string.
            self._known.pop(leaf, None)
            return pa.DictionaryArray.from_arrays(distinct.indices.cast(pa.int32()), distinct.dictionary)
        unique = distinct.dictionary.to_pylist()
        new = [s for s in unique if s not in index]
        if new:
            if len(index) + len(new) > LEAF_DICTIONARY_LIMIT:
                index, new = {}, unique
            for s in new:
                index[s] = len(index)
            dictionary = pa.array(list(index), pa.string())
            self._known[leaf] = (index, dictionary)
        codes = pc.index_in(distinct.dictionary, value_set=dictionary).take(distinct.indices).cast(pa.int32())
        return pa.DictionaryArray.from_arrays(codes, dictionary)

    def encode(self, leaf: str, arr: pa.Array) -> pa.Array:
        """``arr`` (not a slice) with each string inside it dictionary-encoded."""
        type_ = arr.type
        mask = arr.is_null() if arr.null_count else None
        if pa.types.is_string(type_):
            return self._codes(leaf, arr)
        if pa.types.is_map(type_):
            keys = self.encode(leaf + ".key", arr.keys)
            items = self.encode(leaf + ".value", arr.items)
            return pa.MapArray.from_arrays(arr.offsets, keys, items, mask=mask)
        if pa.types.is_list(type_):
            values = self.encode(leaf + "[]", arr.values)
            return pa.ListArray.from_arrays(arr.offsets, values, type=encoded_type(type_), mask=mask)
        if pa.types.is_struct(type_):
            children = [self.encode(f"{leaf}.{f.name}", arr.field(i)) for i, f in enumerate(type_)]
            return pa.StructArray.from_arrays(children, fields=list(encoded_type(type_)), mask=mask)
        return arr

    def repeat(self, leaf: str, value: str, n: int) -> pa.Array:
        """``value`` ``n`` times, as codes into the leaf's dictionary."""
        return self.encode(leaf, pa.array([value], pa.string())).take(pa.array(np.zeros(n, dtype=np.int32)))
