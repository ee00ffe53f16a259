"""flowlens: Calico flow logs in Parquet, offline policy replay, least-privilege suggestions.

``__version__`` is the one place the version is written: the package metadata (pyproject.toml),
`flowlens version` and the container image labels all read it from here.
"""

__version__ = "0.1.0"
