# moto's S3 server: an S3-compatible stand-in for MinIO (no MinIO in Debian or on PyPI) in the
# stack smoke test (compose.local.yml). In-memory: nothing survives a restart. Build context: the
# repository root (the lock and wheelhouse of target s3).
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE} AS build
ARG PIP_INSTALL_FLAGS=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY scripts/containers/locks/s3.txt /tmp/requirements.txt
COPY wheels/s3 /wheels
RUN /opt/venv/bin/pip install ${PIP_INSTALL_FLAGS} --find-links /wheels -r /tmp/requirements.txt

FROM ${PYTHON_IMAGE}
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/mgs mgs
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1
USER mgs
EXPOSE 9000
HEALTHCHECK --interval=5s --timeout=5s --retries=20 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/moto-api/', timeout=4)"]
CMD ["moto_server", "-H", "0.0.0.0", "-p", "9000"]
