#!/usr/bin/env bash
# Installs everything rag-streams needs on a fresh Debian machine, then fetches the Kafka jars.
# Idempotent: what is already there is kept. Run from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)  # builds interop/java
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
echo "setup: installing rag-streams and its Python dependencies ($($PY --version))"
$PY -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'  # the verified versions

echo "setup: fetching the Apache Kafka broker jars from Maven Central (cached)"
$PY - <<'PY'
from rag_streams.commands.ops import local_kafka
from rag_streams.settings import load_settings
print("setup: kafka jars in", local_kafka(load_settings()).install())
PY
echo "setup: building the Avro interop helper, fetching Apicurio Registry (Maven Central, cached)"
bash interop/prepare.sh >/dev/null
echo "setup: done"
