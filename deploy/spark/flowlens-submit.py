"""flowlens as a Spark application: ``spark-submit [spark options] flowlens-submit.py COMMAND ...``.

spark-submit runs this file with the Python it is told to use (``spark.pyspark.driver.python``,
``PYSPARK_DRIVER_PYTHON``, else ``python3``), which must have flowlens installed (the image of
deploy/spark/Containerfile does; elsewhere ``pip install 'flowlens[spark]'`` or the wheel). The
arguments are flowlens' own command line. The engine is Spark unless ``--engine`` says otherwise,
and flowlens runs on the session spark-submit set up: its master, its ``--conf`` settings and
``spark-defaults.conf``.

    spark-submit --master 'local[4]' deploy/spark/flowlens-submit.py \\
        report --store /data/store --reports /data/reports --window day
"""

import os
import sys

from flowlens.cli import main

if __name__ == "__main__":
    # Under spark-submit the engine is Spark, as if FLOWLENS_ENGINE=spark were set (an explicit
    # --engine or FLOWLENS_ENGINE still wins).
    os.environ.setdefault("FLOWLENS_ENGINE", "spark")
    sys.argv[0] = "flowlens"
    main()
