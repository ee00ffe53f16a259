"""Spark's start-up lines kept off the terminal when flowlens starts the JVM itself.

A Spark JVM started without a logging configuration uses Spark's default one, and writes some
eight lines on stderr before flowlens can turn its logging down: the default log4j profile it
uses (twice), the host's address, Hadoop's native library, the default log level and how to
change it. The command line points that JVM at ``spark-log4j2.properties`` (errors only, still on
stderr) through ``SPARK_SUBMIT_OPTS`` (:func:`submit_options`), which the launcher adds to the
driver's Java options and which spark-defaults.conf does not replace. Spark is left alone when
the user configured its logging: a ``log4j`` option already in ``SPARK_SUBMIT_OPTS`` or in
``spark.driver.extraJavaOptions``, or a ``log4j2.properties`` (or ``.xml``, ``.yaml``, ``.json``)
in Spark's configuration folder; and when the JVM is not started by this process (spark-submit
started it: ``PYSPARK_GATEWAY_PORT``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

#: The logging configuration given to a JVM flowlens starts itself.
LOG4J2_PROPERTIES = Path(__file__).with_name("spark-log4j2.properties")
#: The environment variable whose Java options the launcher gives the driver's JVM.
SUBMIT_OPTIONS = "SPARK_SUBMIT_OPTS"
_LOG4J2_FILES = ("log4j2.properties", "log4j2.xml", "log4j2.yaml", "log4j2.yml", "log4j2.json")


def _conf_dir(environ: Mapping[str, str]) -> Path | None:
    """Spark's configuration folder: $SPARK_CONF_DIR, else $SPARK_HOME/conf (None: neither set)."""
    if environ.get("SPARK_CONF_DIR"):
        return Path(environ["SPARK_CONF_DIR"])
    if environ.get("SPARK_HOME"):
        return Path(environ["SPARK_HOME"]) / "conf"
    return None


def configured_elsewhere(conf: Mapping[str, str], environ: Mapping[str, str]) -> bool:
    """Whether the user configured Spark's logging, or the JVM is not started by this process."""
    if "PYSPARK_GATEWAY_PORT" in environ:
        return True
    if "log4j" in environ.get(SUBMIT_OPTIONS, "") or "log4j" in conf.get("spark.driver.extraJavaOptions", ""):
        return True
    folder = _conf_dir(environ)
    return folder is not None and any((folder / name).is_file() for name in _LOG4J2_FILES)


def submit_options(conf: Mapping[str, str], environ: Mapping[str, str]) -> str | None:
    """The value of ``SPARK_SUBMIT_OPTS`` that starts a JVM with :data:`LOG4J2_PROPERTIES` (the
    options already there kept), or None when Spark's logging is configured otherwise. ``conf``:
    the settings the session is asked for; ``environ``: the environment it starts in."""
    if configured_elsewhere(conf, environ) or '"' in str(LOG4J2_PROPERTIES):
        return None
    option = f'"-Dlog4j2.configurationFile={LOG4J2_PROPERTIES}"'  # (quoted: the path may hold spaces)
    before = environ.get(SUBMIT_OPTIONS)
    return f"{before} {option}" if before else option
