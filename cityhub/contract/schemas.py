"""JSON Schemas of the contract's payloads, generated from the pydantic models.

``python -m cityhub.contract.schemas docs/schemas`` rewrites the published files; a test fails when
the published files and the code disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cityhub.contract.alerts import AlertMessage
from cityhub.contract.payloads import (
    BirthMessage,
    DeadLetterMessage,
    EventMessage,
    StatusMessage,
    TelemetryMessage,
)
from cityhub.contract.registration import RegistrationRequest, RegistrationResponse

SCHEMA_BASE_URI = "https://cityhub.example.org/schemas/v1/"

_MODELS: dict[str, type[BaseModel]] = {
    "telemetry": TelemetryMessage,
    "event": EventMessage,
    "birth": BirthMessage,
    "status": StatusMessage,
    "deadletter": DeadLetterMessage,
    "registration-request": RegistrationRequest,
    "registration-response": RegistrationResponse,
    "alert": AlertMessage,
}


def schema_documents() -> dict[str, dict[str, Any]]:
    """File name to JSON Schema (draft 2020-12) of every payload."""
    documents: dict[str, dict[str, Any]] = {}
    for name, model in _MODELS.items():
        schema = model.model_json_schema(mode="validation")
        file_name = f"{name}.schema.json"
        documents[file_name] = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": SCHEMA_BASE_URI + file_name,
            **schema,
        }
    return documents


def render(document: dict[str, Any]) -> str:
    """The exact text of a published schema file."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(directory: Path) -> list[Path]:
    """Write every schema into ``directory``; return the paths written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, document in schema_documents().items():
        path = directory / file_name
        path.write_text(render(document), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_schemas(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/schemas")):
        print(written_path)
