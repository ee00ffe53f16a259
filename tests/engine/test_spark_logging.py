"""A Spark JVM that flowlens starts itself writes nothing on stderr while it starts (no default
log4j profile, host address, Hadoop native library or default log level lines), unless the user
configured Spark's logging."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from flowlens.engine import spark_logging
from flowlens.engine.spark_logging import LOG4J2_PROPERTIES, configured_elsewhere, submit_options
from tests.factories import write_store
from tests.helpers import ROOT
from tests.queries.helpers import flow, wep

# What Spark's start writes on stderr with its default logging (each line seen on this machine).
START_LINES = ("log4j profile", "Setting default log level", "setLogLevel", " WARN ", "NativeCodeLoader")


def test_the_configuration_is_shipped_with_the_package() -> None:
    text = LOG4J2_PROPERTIES.read_text()
    assert "rootLogger.level = error" in text
    assert "appender.console.target = SYSTEM_ERR" in text  # errors still reach the user


@pytest.mark.parametrize(
    ("conf", "environ"),
    [
        ({}, {"PYSPARK_GATEWAY_PORT": "40000"}),  # spark-submit's JVM: not started here
        ({}, {"SPARK_SUBMIT_OPTS": "-Dlog4j2.configurationFile=/etc/spark/log4j2.xml"}),
        ({"spark.driver.extraJavaOptions": "-Dlog4j.configurationFile=mine.properties"}, {}),
    ],
)
def test_logging_the_user_configured_is_left_alone(conf: dict[str, str], environ: dict[str, str]) -> None:
    assert configured_elsewhere(conf, environ)


@pytest.mark.parametrize("name", ["log4j2.properties", "log4j2.xml"])
@pytest.mark.parametrize("variable", ["SPARK_CONF_DIR", "SPARK_HOME"])
def test_a_log4j2_file_in_sparks_configuration_folder_is_left_alone(
    tmp_path: Path, name: str, variable: str
) -> None:
    folder = tmp_path if variable == "SPARK_CONF_DIR" else tmp_path / "conf"
    folder.mkdir(exist_ok=True)
    environ = {variable: str(tmp_path)}
    assert not configured_elsewhere({}, environ)
    (folder / name).write_text("rootLogger.level = info\n")
    assert configured_elsewhere({}, environ)


def test_nothing_configured_is_quieted() -> None:
    assert not configured_elsewhere(
        {"spark.driver.extraJavaOptions": "-Xss4m"}, {"SPARK_SUBMIT_OPTS": "-Xmx2g"}
    )


def test_the_option_is_added_to_the_users_own() -> None:
    option = f'"-Dlog4j2.configurationFile={LOG4J2_PROPERTIES}"'
    assert submit_options({}, {"SPARK_SUBMIT_OPTS": "-Xmx2g"}) == f"-Xmx2g {option}"
    assert submit_options({}, {}) == option
    assert submit_options({}, {"PYSPARK_GATEWAY_PORT": "40000"}) is None


def _spark_query(store: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWLENS_", "SPARK_", "PYSPARK_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env |= environ
    return subprocess.run(
        [sys.executable, "-m", "flowlens", "query", "denied", "--engine", "spark", "--store", str(store)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


@pytest.mark.spark
@pytest.mark.slow
def test_a_spark_command_starts_quietly_and_a_users_logging_still_rules(tmp_path: Path) -> None:
    denied = flow(wep("shop", "scanner"), wep("shop", "cart"), action="deny", dest_port=6379)
    store = write_store(tmp_path / "store", [denied])
    quiet = _spark_query(store, {})
    assert quiet.returncode == 0, quiet.stderr
    assert "shop/cart" in quiet.stdout
    assert not [line for line in quiet.stderr.splitlines() if any(s in line for s in START_LINES)], (
        quiet.stderr
    )
    # A Spark configuration folder with its own log4j2.properties: Spark logs as it says.
    conf = tmp_path / "spark-conf"
    conf.mkdir()
    (conf / "log4j2.properties").write_text(
        "rootLogger.level = info\nrootLogger.appenderRef.stderr.ref = console\n"
        "appender.console.type = Console\nappender.console.name = console\n"
        "appender.console.target = SYSTEM_ERR\nappender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = USERS-OWN %p %c{1}: %m%n\n"
    )
    loud = _spark_query(store, {"SPARK_CONF_DIR": str(conf)})
    assert loud.returncode == 0, loud.stderr
    assert "USERS-OWN " in loud.stderr  # its own layout: its configuration, not flowlens', was used
    assert spark_logging.LOG4J2_PROPERTIES.is_file()
