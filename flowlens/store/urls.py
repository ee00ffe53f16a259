"""Stores and sources given as URLs: which ones flowlens reads and writes, and how.

Owns :func:`local_path`: a path or a ``file:`` URL (``file:///data/store``, ``file:/data/store``,
``file://localhost/data/store``) as the local path it names. A URL of another scheme
(``s3a://``, ``hdfs://``, ``gs://``, ``abfss://``, ``viewfs://``, ...) is not a local path: it
raises an error that says what to do (the Spark engine reads and writes them through Hadoop's
file systems; the DuckDB engine needs them mounted). :func:`remote_base` splits such a URL into
its ``scheme://authority`` and its path, which is how :class:`flowlens.store.layout.Store` keeps
a store at a Hadoop URL. So ``--store file:///x`` is the folder ``/x`` for every command on both
engines.
"""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

from flowlens.errors import UsageError

#: A URL scheme (two characters or more, so that a Windows drive letter is not one), then ``:/``;
#: ``pathlib`` folds ``file:///x`` into ``file:/x``, so one slash is enough to tell a URL.
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):/")


def url_scheme(text: str) -> str | None:
    """The scheme of ``text`` when it is a URL (lower case), else None (a plain path)."""
    match = _SCHEME.match(text)
    return match.group(1).lower() if match else None


def local_path(text: str, what: str = "path") -> str:
    """``text`` (a path or a ``file:`` URL) as a local path; ``what`` names it in the error a URL
    of another scheme raises (:class:`UsageError`)."""
    scheme = url_scheme(text)
    if scheme is None:
        return text
    if scheme != "file":
        raise UsageError(
            f"{what} {text!r}: {scheme}:// is read by the Spark engine only (Hadoop's file systems): "
            "add --engine spark, or mount it (s3fs, gcsfuse, blobfuse, an NFS or HDFS mount) and give "
            "the mounted folder"
        )
    parts = urlsplit(text)
    if parts.netloc not in ("", "localhost"):
        raise UsageError(
            f"{what} {text!r}: a file:// URL names a folder of this machine (file:///path); "
            f"{parts.netloc!r} is another host: mount its folder and give the mounted path"
        )
    if parts.query or parts.fragment:
        raise UsageError(f"{what} {text!r}: a file:// URL has no ?query or #fragment")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise UsageError(f"{what} {text!r}: give an absolute file:// URL (file:///path)")
    return path


def remote_base(text: str, what: str = "path") -> tuple[str, str]:
    """A Hadoop URL (``hdfs://nn:8020/data/store``) as its ``scheme://authority`` and its path
    (``/data/store``; a trailing slash dropped). :class:`UsageError` for a ``?query`` or
    ``#fragment``, which Hadoop paths do not have."""
    parts = urlsplit(text)
    if parts.query or parts.fragment:
        raise UsageError(f"{what} {text!r}: a {parts.scheme}:// URL here has no ?query or #fragment")
    path = parts.path.rstrip("/") or "/"
    if not path.startswith("/"):
        path = "/" + path
    return f"{parts.scheme.lower()}://{parts.netloc}", path
