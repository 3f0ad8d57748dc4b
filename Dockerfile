# cityhub hub image: the Python package on Debian's Python 3.11.
FROM python:3.11-slim-bookworm
WORKDIR /app
COPY pyproject.toml README.md ./
COPY cityhub cityhub
COPY hub hub
COPY edge_agent edge_agent
COPY drivers drivers
COPY rules rules
COPY simulators simulators
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/cityhub cityhub \
    && mkdir -p /var/lib/cityhub && chown cityhub /var/lib/cityhub
USER cityhub
ENV CITYHUB_DATA_DIR=/var/lib/cityhub CITYHUB_HTTP_HOST=0.0.0.0
EXPOSE 8080
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=3)"
ENTRYPOINT ["cityhub"]
CMD ["hub"]
