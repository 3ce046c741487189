"""A real single-node Apache Kafka broker (KRaft) on loopback, for development, tests and the demo.

The broker jars come from Maven Central (``mvn dependency:copy-dependencies``, pinned by
RAG_KAFKA_VERSION) and are cached in RAG_KAFKA_HOME, outside the repository. Java 17 and
Maven must be on PATH.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["KafkaError", "LocalKafka"]


class KafkaError(RuntimeError):
    """The local broker could not be installed, started or stopped; the message says why."""


def _cluster_id() -> str:
    """A Kafka cluster id: a UUID in URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


@dataclass
class LocalKafka:
    home: Path
    version: str = "3.9.1"
    host: str = "127.0.0.1"
    port: int = 9092

    @property
    def libs(self) -> Path:
        return self.home / f"libs-{self.version}"

    @property
    def node_dir(self) -> Path:
        return self.home / f"node-{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.node_dir / "broker.pid"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    # --- install -------------------------------------------------------------
    def install(self) -> Path:
        """Fetch the broker's jars once (Maven Central); return the folder."""
        marker = self.libs / ".complete"
        if marker.exists():
            return self.libs
        for tool in ("java", "mvn"):
            if shutil.which(tool) is None:
                raise KafkaError(f"{tool} is not on PATH (the local broker needs Java 17+ and Maven)")
        self.home.mkdir(parents=True, exist_ok=True)
        pom = self.home / "pom.xml"
        pom.write_text((resources.files("rag_streams") / "kafka_pom.xml").read_text())
        tmp = self.home / f"libs-{self.version}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        proc = subprocess.run(
            [
                "mvn",
                "-B",
                "-q",
                "-f",
                str(pom),
                f"-Dkafka.version={self.version}",
                "dependency:copy-dependencies",
                f"-DoutputDirectory={tmp}",
                "-DincludeScope=runtime",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-5:]
            raise KafkaError(f"fetching Kafka {self.version} jars with Maven failed: {' | '.join(tail)}")
        shutil.rmtree(self.libs, ignore_errors=True)
        tmp.rename(self.libs)
        marker.touch()
        return self.libs

    # --- lifecycle -----------------------------------------------------------
    def _java(self, *args: str, log4j: bool = True) -> list[str]:
        # C1 only (TieredStopAtLevel=1): a fresh broker's C2 JIT compiling took ~2x the CPU of the
        # broker's own work during the first minutes of traffic, on 2 cores shared with the model.
        cmd = [
            "java",
            "-Xms256m",
            "-Xmx768m",
            "-XX:+UseG1GC",
            "-XX:TieredStopAtLevel=1",
            "-Djava.awt.headless=true",
            "-cp",
            f"{self.libs}/*",
        ]
        if log4j:
            cmd[1:1] = [
                f"-Dlog4j.configuration=file:{self.node_dir / 'log4j.properties'}",
                f"-Dkafka.logs.dir={self.node_dir}",
            ]
        return [*cmd, *args]

    def _write_config(self) -> Path:
        self.node_dir.mkdir(parents=True, exist_ok=True)
        controller = self.port + 1
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{controller}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.node_dir / "data"),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "4",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "false",
            "log.cleaner.backoff.ms": "1000",
        }
        cfg = self.node_dir / "server.properties"
        cfg.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        log4j = (resources.files("rag_streams") / "kafka_log4j.properties").read_text()
        (self.node_dir / "log4j.properties").write_text(log4j)
        return cfg

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text())
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it if this process started it and it exited
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def is_listening(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def start(self, *, timeout: float = 90.0) -> None:
        """Install if needed, format storage on first start, start the broker and wait until it serves."""
        if self.pid() is not None:
            self._wait_ready(timeout)
            return
        if self.is_listening():
            raise KafkaError(f"port {self.port} is already in use by another process")
        self.install()
        cfg = self._write_config()
        if not (self.node_dir / "data" / "meta.properties").exists():
            proc = subprocess.run(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    f"--cluster-id={_cluster_id()}",
                    "-c",
                    str(cfg),
                    "--ignore-formatted",
                    log4j=False,
                ),
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise KafkaError(f"formatting Kafka storage failed: {proc.stderr.strip()[-300:]}")
        (self.node_dir / "server.log").unlink(missing_ok=True)
        out = open(self.node_dir / "stdout.log", "ab")  # noqa: SIM115 - handed to the child process
        proc2 = subprocess.Popen(
            self._java("kafka.Kafka", str(cfg)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pidfile.write_text(str(proc2.pid))
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        log = self.node_dir / "server.log"
        while time.monotonic() < deadline:
            if self.pid() is None:
                raise KafkaError(f"the broker exited during start; see {self.node_dir / 'stdout.log'}")
            if self.is_listening() and log.exists() and "Kafka Server started" in log.read_text(errors="replace"):
                return
            time.sleep(0.25)
        raise KafkaError(f"the broker did not start within {timeout:.0f}s; see {log}")

    def stop(self, *, timeout: float = 30.0, kill: bool = False) -> bool:
        """Stop the broker (SIGTERM, or SIGKILL with ``kill``); False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.2)
        if self.pid() is not None:
            os.kill(pid, signal.SIGKILL)
            time.sleep(0.5)
        (self.node_dir / "server.log").unlink(missing_ok=True)
        return True

    def wipe(self) -> None:
        """Delete the node's data (the broker must be stopped)."""
        if self.pid() is not None:
            raise KafkaError("stop the broker before wiping its data")
        shutil.rmtree(self.node_dir, ignore_errors=True)
