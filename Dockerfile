# Image of the rag-streams worker and query API (docker-compose.kafka.yml, deploy/kubernetes/).
#   docker build -t rag-streams .
# CPU-only torch by default (a much smaller image); for a GPU image build with
#   --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu124
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
# Every runtime dependency at its verified version (constraints.txt); torch's build from TORCH_INDEX_URL.
COPY constraints.txt /src/constraints.txt
RUN pip install -c constraints.txt --index-url "${TORCH_INDEX_URL}" --extra-index-url https://pypi.org/simple torch
COPY . /src
RUN pip install -c constraints.txt . \
    && useradd --create-home --uid 10001 rag \
    && mkdir -p /data \
    && chown rag:rag /data

USER rag
WORKDIR /home/rag

# Containers listen on all interfaces; local state (Faust tables in RocksDB) lives in /data.
ENV RAG_WEB_HOST=0.0.0.0 \
    RAG_WEB_PORT=6066 \
    RAG_DATA_DIR=/data \
    RAG_LOG_FORMAT=json

VOLUME ["/data"]
EXPOSE 6066

HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RAG_WEB_PORT', '6066'), timeout=2)"

CMD ["rag-streams", "worker"]
