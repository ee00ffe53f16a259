"""flowlens: Calico flow logs in Parquet, offline policy replay, least-privilege suggestions."""

__version__ = "0.1.0"
