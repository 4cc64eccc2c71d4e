"""The official Java client (kafka-clients 4.3): admin, idempotent lz4 producer with headers,
classic and KIP-848 consumer groups. The program asserts; this runs it against a broker."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import unique_topic

LIBS = Path(os.environ.get("WEIR_JAVA_LIBS", Path.home() / ".cache" / "weir-java"))
SOURCE = Path(__file__).parent / "java" / "WeirSmoke.java"

pytestmark = pytest.mark.skipif(
    shutil.which("javac") is None or not (LIBS / "kafka-clients-4.3.0.jar").exists(),
    reason="javac or the Java client jars are missing (scripts/test installs the jars)")


def test_java_client_end_to_end(broker, tmp_path):
    classpath = f"{LIBS}/*"
    subprocess.run(["javac", "-d", str(tmp_path), "-cp", classpath, str(SOURCE)],
                   check=True, capture_output=True, timeout=120)
    p = subprocess.run(["java", "-cp", f"{tmp_path}:{classpath}", "WeirSmoke", broker.bootstrap,
                        unique_topic("java")], capture_output=True, text=True, timeout=180)
    print(p.stdout)
    assert p.returncode == 0, f"stdout:\n{p.stdout}\nstderr:\n{p.stderr[-3000:]}"
    assert p.stdout.strip().endswith("OK")
    assert "classic group:" in p.stdout and "consumer group:" in p.stdout
    assert "transactions:" in p.stdout
