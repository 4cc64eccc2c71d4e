"""The PostgreSQL JDBC driver (pgjdbc, Debian's libpostgresql-jdbc-java, which scripts/test
installs) against the SQL listener: tests/java/WeirJdbc.java connects, defines a source and a
view, inserts through a prepared statement past the driver's server-prepare threshold, reads
the view with typed getters, lists tables and columns through DatabaseMetaData and checks
the SQLSTATE of bad SQL. The program asserts; this runs it against a broker."""

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import create_topic, unique_topic

JAR = Path("/usr/share/java/postgresql.jar")
SOURCE = Path(__file__).parent / "java" / "WeirJdbc.java"

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or not JAR.exists(),
    reason="javac or pgjdbc (apt-get install libpostgresql-jdbc-java) is missing")


def test_jdbc_driver_defines_writes_and_reads_a_view(broker, tmp_path):
    topic = unique_topic("jdbc")
    create_topic(broker.bootstrap, topic, partitions=2)
    subprocess.run(["javac", "-d", str(tmp_path), "-cp", str(JAR), str(SOURCE)],
                   check=True, capture_output=True, timeout=120)
    p = subprocess.run(["java", "-cp", f"{tmp_path}:{JAR}", "WeirJdbc",
                        f"127.0.0.1:{broker.sql_port}", topic],
                       capture_output=True, text=True, timeout=180)
    print(p.stdout)
    assert p.returncode == 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}"
    assert p.stdout.strip().endswith("OK")
    assert "view: [c0 4 27.0, c1 4 33.0, c2 4 39.0]" in p.stdout
