"""flowlens: Calico flow logs in Parquet, offline policy replay, least-privilege suggestions.

``__version__`` is the one place the version is written: the package metadata (pyproject.toml),
`flowlens version` and the container image labels all read it from here.
"""

__version__ = "0.1.0"


def runtime_versions() -> dict[str, str]:
    """flowlens, Python, DuckDB and pyarrow versions, as this process has them loaded (what a bug
    report needs: DuckDB parses and queries, pyarrow writes the store, and both change behaviour
    between releases)."""
    import platform

    import duckdb
    import pyarrow

    return {
        "flowlens": __version__,
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pyarrow.__version__,
    }
