"""The base of every model that is read from or written to the API: camelCase on the wire (pure).

Field names are snake_case in Python and camelCase on the wire (the CRD schema in crds/).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class WireModel(BaseModel):
    """camelCase on the wire, snake_case in Python; unknown fields from the API are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")
