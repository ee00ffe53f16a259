"""The commented YAML writer: whatever text comes from the logs, the YAML reads back the same."""

from __future__ import annotations

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flowlens.suggest.yamlout import Commented, Document, dump_documents, plain

scalars = st.one_of(st.text(max_size=20), st.integers(-(2**40), 2**40), st.booleans(), st.none())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=8), inner, max_size=4),
        st.builds(Commented, inner, st.lists(st.text(max_size=30), max_size=2).map(tuple)),
    ),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(
    body=st.dictionaries(st.text(min_size=1, max_size=8), values, min_size=1, max_size=4),
    comments=st.lists(st.text(max_size=40), max_size=3),
)
def test_any_document_reads_back_as_written_and_comments_stay_comments(
    body: dict, comments: list[str]
) -> None:
    text = dump_documents([Document(body, tuple(comments))], header=tuple(comments))
    assert list(yaml.safe_load_all(text)) == [plain(body)]
