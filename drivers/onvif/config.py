"""An ONVIF camera's entry in the edge agent's inventory (validated where the file is read)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from cityhub.contract.topics import ID_PATTERN

_Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class OnvifDeviceConfig(BaseModel):
    """One camera: where it is, its credentials, how it is polled and watched."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    driver: Literal["onvif"]
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    site: Annotated[str, Field(pattern=ID_PATTERN)] | None = None
    poll_interval_s: _Seconds = 30.0
    host: Annotated[str, Field(min_length=1)]
    port: Annotated[int, Field(ge=1, le=65535)] = 80
    username: str
    password: SecretStr
    timeout_s: Annotated[float, Field(gt=0, le=120, allow_inf_nan=False)] = 5.0
    events: bool = Field(default=True, description="Subscribe to the camera's events (PullPoint)")
    snapshot: bool = Field(default=True, description="Fetch a snapshot each poll to check the picture")
    snapshot_profile: str | None = Field(default=None, description="Media profile token; default the first")
    frozen_after: Annotated[int, Field(ge=2, le=1000)] = Field(
        default=3, description="Polls with the same snapshot after which the picture counts as frozen"
    )
    subscription_s: Annotated[int, Field(ge=1, le=3600)] = Field(
        default=60, description="Termination time asked for the PullPoint subscription; renewed well before"
    )
    pull_wait_s: Annotated[float, Field(gt=0, le=60, allow_inf_nan=False)] = Field(
        default=10.0, description="How long one PullMessages may wait for events on the camera"
    )
    retry_initial_s: _Seconds = 1.0
    retry_max_s: _Seconds = 30.0
    clock_resync_s: _Seconds = Field(
        default=5.0, description="Clock skew change after which WS-Security timestamps are recomputed"
    )
