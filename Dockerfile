# cityhub image: the hub (default command), and the edge agent and simulators of the compose `demo`
# profile. Debian's Python 3.11; runtime dependencies only (no `dev` extra).
#
# Two stages: the build stage compiles the wheel and installs it into /opt/cityhub; the runtime stage
# copies that venv only, so build tools, pip's cache and the sources stay out of the image.
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cityhub cityhub
COPY hub hub
COPY edge_agent edge_agent
COPY drivers drivers
COPY rules rules
COPY simulators simulators
RUN python -m venv /opt/cityhub && /opt/cityhub/bin/pip install .

FROM python:3.11-slim-bookworm
# A fixed uid, so that a volume prepared on the host (chown 10001) matches the container's user.
RUN groupadd --system --gid 10001 cityhub \
    && useradd --system --uid 10001 --gid cityhub --home-dir /var/lib/cityhub --shell /usr/sbin/nologin cityhub \
    && install -d -o cityhub -g cityhub -m 0750 /var/lib/cityhub
COPY --from=build /opt/cityhub /opt/cityhub
COPY --chmod=0755 deploy/docker/healthcheck.py /usr/local/bin/cityhub-healthcheck
ENV PATH=/opt/cityhub/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CITYHUB_DATA_DIR=/var/lib/cityhub \
    CITYHUB_HTTP_HOST=0.0.0.0
USER cityhub
WORKDIR /var/lib/cityhub
EXPOSE 8080
# /health answers 503 while the hub is not ready (broker or storage away): the container is unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["cityhub-healthcheck", "http", "http://127.0.0.1:8080/health"]
# The hub flushes its last batch and disconnects on SIGTERM (docs/operations.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["cityhub"]
CMD ["hub"]
