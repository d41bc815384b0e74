"""Parameter types shared by the tools: names mirror the upstream request, bounds are the upstream's."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

Fields = Annotated[
    list[Annotated[str, Field(max_length=200)]] | None,
    Field(description="See person-enrich://fields"),
]

MaxCredits = Annotated[
    float | None,
    Field(description="Cost cap"),
]
