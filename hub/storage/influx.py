"""InfluxDB writers: the v1 HTTP API (/write, /query) and the v2 API through influxdb-client.

The v1 API is the common ground: InfluxDB 1.x speaks it natively, 2.x through its v1 compatibility
endpoints (token or user/password), 3.x through its v1 write and InfluxQL endpoints. The v2 API is for
2.x deployments that use buckets and tokens without v1 mappings.

Every HTTP failure is mapped here, once, to StoreUnavailable (retry later) or StoreRejected (never).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import httpx

from hub.errors import StoreRejected, StoreUnavailable

log = logging.getLogger(__name__)


class LineWriter(Protocol):
    """Writes line-protocol bodies (millisecond precision) to a time-series database."""

    async def write_lines(self, body: bytes) -> None:
        """Write the body, or raise StoreUnavailable / StoreRejected."""

    async def prepare(self) -> None:
        """Check the connection and create what is missing, raising StoreUnavailable if it cannot."""

    async def aclose(self) -> None:
        """Release connections."""


def _raise_for_write_status(status: int, text: str) -> None:
    if status < 300:
        return
    detail = f"InfluxDB answered HTTP {status}: {text.strip()[:500]}"
    # 400: the points themselves are refused (syntax, field type conflict; on a "partial write" the
    # valid points were stored). 413: body too large. Neither can succeed by retrying the same body.
    if status in (400, 413, 422):
        raise StoreRejected(detail)
    # 401/403 (credentials), 404 (database or bucket missing), 429, 5xx: fixable by an operator or by
    # time, so the data waits in the spool.
    raise StoreUnavailable(detail)


class InfluxV1Writer:
    """Writes through the v1 ``/write`` endpoint; reads with InfluxQL through ``/query``."""

    def __init__(
        self,
        url: str,
        *,
        database: str,
        retention_policy: str | None = None,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        timeout_s: float = 10.0,
        create_database: bool = True,
    ) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        auth = httpx.BasicAuth(username, password or "") if username else None
        self._client = httpx.AsyncClient(base_url=url, headers=headers, auth=auth, timeout=timeout_s)
        self._params = {"db": database, "precision": "ms"}
        if retention_policy:
            self._params["rp"] = retention_policy
        self._database = database
        self._create_database = create_database

    async def write_lines(self, body: bytes) -> None:
        """POST the body to /write."""
        try:
            response = await self._client.post("/write", params=self._params, content=body)
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"InfluxDB unreachable: {exc!r}") from exc
        _raise_for_write_status(response.status_code, response.text)

    async def query(self, influxql: str) -> dict[str, Any]:
        """Run an InfluxQL query (epoch in ms) and return the decoded JSON answer."""
        try:
            response = await self._client.post(
                "/query", params={"db": self._database, "epoch": "ms"}, data={"q": influxql}
            )
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"InfluxDB unreachable: {exc!r}") from exc
        if response.status_code >= 300:
            raise StoreUnavailable(f"InfluxDB query failed: HTTP {response.status_code} {response.text[:300]}")
        answer: dict[str, Any] = response.json()
        for result in answer.get("results", []):
            if "error" in result:
                raise StoreRejected(f"InfluxQL error: {result['error']}")
        return answer

    async def prepare(self) -> None:
        """Check that InfluxDB answers; create the database if allowed (idempotent in InfluxQL)."""
        try:
            response = await self._client.get("/ping")
        except httpx.HTTPError as exc:
            raise StoreUnavailable(f"InfluxDB unreachable: {exc!r}") from exc
        if response.status_code >= 300:
            raise StoreUnavailable(f"InfluxDB ping answered HTTP {response.status_code}")
        if self._create_database:
            name = self._database.replace("\\", "\\\\").replace('"', '\\"')
            try:
                await self.query(f'CREATE DATABASE "{name}"')
            except (StoreUnavailable, StoreRejected) as exc:
                # A writer without admin rights, or InfluxDB 3 (which creates databases on write):
                # writes may still succeed, and if not they fail and spool with their own error.
                log.warning("could not create database %r (continuing): %s", self._database, exc)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()


class InfluxV2Writer:
    """Writes through the v2 API with influxdb-client (token, org, bucket).

    influxdb-client's synchronous write API is blocking, so each write runs in a worker thread.
    """

    def __init__(self, url: str, *, token: str, org: str, bucket: str, timeout_s: float = 10.0) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self._client = InfluxDBClient(url=url, token=token, org=org, timeout=int(timeout_s * 1000))
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        self._org = org
        self._bucket = bucket

    def _write_blocking(self, body: bytes) -> None:
        # influxdb-client types WritePrecision.MS as str although write() annotates the class.
        from influxdb_client.domain.write_precision import WritePrecision
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        try:
            self._write_api.write(bucket=self._bucket, org=self._org, record=body, write_precision=WritePrecision.MS)  # type: ignore[arg-type]
        except ApiException as exc:
            _raise_for_write_status(int(exc.status or 500), str(exc.body or exc.reason))
        except (Urllib3Error, OSError) as exc:
            raise StoreUnavailable(f"InfluxDB unreachable: {exc!r}") from exc

    async def write_lines(self, body: bytes) -> None:
        """Write the body to the bucket."""
        await asyncio.to_thread(self._write_blocking, body)

    async def prepare(self) -> None:
        """Check that the server answers its health endpoint."""
        try:
            healthy = await asyncio.to_thread(self._client.ping)
        except Exception as exc:  # influxdb-client raises assorted urllib3 errors here
            raise StoreUnavailable(f"InfluxDB unreachable: {exc!r}") from exc
        if not healthy:
            raise StoreUnavailable("InfluxDB ping failed")

    async def aclose(self) -> None:
        """Close the client."""
        await asyncio.to_thread(self._client.close)
