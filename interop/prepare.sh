#!/usr/bin/env bash
# Prepares what tests/integration/test_avro_interop.py runs, from Maven Central (cached in ~/.m2):
#  - interop/java: Apache Avro's own single-object encoder/decoder on the project's schemas;
#  - Apicurio Registry (in-memory storage, a Confluent-compatible API under /apis/ccompat/v7),
#    unpacked under ~/.cache/rag-streams/. Its 2.6 line runs on Java 17 (3.x needs Java 21).
# Idempotent and quiet; prints the Apicurio runner jar's path. Run from anywhere.
set -euo pipefail
cd "$(dirname "$0")"
APICURIO_VERSION=2.6.13.Final
mvn -q -B -Dstyle.color=never -f java/pom.xml package -DskipTests >&2
home="${RAG_INTEROP_HOME:-$HOME/.cache/rag-streams}/apicurio-$APICURIO_VERSION"
runner="$home/apicurio-registry-app-$APICURIO_VERSION-runner.jar"
if [ ! -f "$runner" ]; then
  mvn -q -B -Dstyle.color=never dependency:get -Dtransitive=false \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" >&2
  mkdir -p "$home.tmp"
  tar xzf "$HOME/.m2/repository/io/apicurio/apicurio-registry-app/$APICURIO_VERSION/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$home.tmp"
  rm -rf "$home" && mv "$home.tmp" "$home"
fi
echo "$runner"
