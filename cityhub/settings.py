"""Field types shared by the configurations of every cityhub process (hub, agent)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

from cityhub.contract.topics import validate_root
from cityhub.mqtt import BrokerAddress


def _valid_mqtt_url(value: str) -> str:
    BrokerAddress.from_url(value)
    return value


#: ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://…``, checked when the configuration is loaded.
MqttUrl = Annotated[str, AfterValidator(_valid_mqtt_url)]
#: The contract's topic root: 1 to 4 levels, no wildcards.
TopicRoot = Annotated[str, AfterValidator(validate_root)]
