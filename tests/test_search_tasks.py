"""Five search tasks as a model would write them, from the tool descriptions alone.

Each first try below is what a reader of `tools/list` (descriptions and schemas, nothing else) would plausibly
write for the prose task beside it: they know the example field `experience.employment_details.current.title` with
`(.)`, and guess the rest. Each second try uses only what the first try's answer said (the text a model reads). A
task passes when it finds people on the first try, or when its first try is refused for free with a message that
names the fix and the second try, written from that message, finds people. Nothing is spent on a refused try.

Count, against the sandbox's synthetic dataset: 1 of 5 succeeds on the first try; the other 4 succeed on the second.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

import pytest
from mcp import Client

from tests.conftest import Upstream, text_of

TITLE = "experience.employment_details.current.title"


@dataclass(frozen=True)
class Task:
    """A task in prose, the first try, and (when the first try is refused) the hints its answer must give and the
    second try written from them."""

    prose: str
    first: dict[str, Any]
    hints: tuple[str, ...] = ()
    second: dict[str, Any] | None = None


def _and(*conditions: dict[str, Any]) -> dict[str, Any]:
    return {"op": "and", "conditions": list(conditions)}


def _leaf(field: str, operator: str, value: Any) -> dict[str, Any]:
    return {"field": field, "type": operator, "value": value}


TASKS = {
    "cto": Task(
        prose="Chief technology officers, wherever they are: who should hear about our security audit?",
        first={"filters": _leaf(TITLE, "(.)", "CTO|Chief Technology Officer"), "limit": 5},
    ),
    "eng-leaders-europe": Task(
        prose="VPs or heads of engineering anywhere in Europe, for a developer-tools launch.",
        first={
            "filters": _and(
                _leaf(TITLE, "(.)", "VP Engineering|Vice President Engineering|Head of Engineering"),
                _leaf("continent", "=", "Europe"),
            ),
            "limit": 5,
        },
        hints=("'continent' (nearest: basic_profile.location.continent",),
        second={
            "filters": _and(
                _leaf(TITLE, "(.)", "VP Engineering|Vice President Engineering|Head of Engineering"),
                _leaf("basic_profile.location.continent", "=", "Europe"),
            ),
            "limit": 5,
        },
    ),
    "us-marketing-directors-emails": Task(
        prose="Five marketing directors in the USA with their work emails (the headline task).",
        first={
            "filters": _and(
                _leaf(TITLE, "(.)", "Marketing Director|Director of Marketing|Head of Marketing"),
                _leaf("country", "=", "USA"),
            ),
            "limit": 5,
            "fields": ["basic_profile.name", "basic_profile.current_title", "contact.business_emails"],
        },
        hints=("'country' (nearest: basic_profile.location.country", "'USA' is a country code", "use 'United States'"),
        second={
            "filters": _and(
                _leaf(TITLE, "(.)", "Marketing Director|Director of Marketing|Head of Marketing"),
                _leaf("basic_profile.location.country", "=", "United States"),
            ),
            "limit": 5,
            "fields": ["basic_profile.name", "basic_profile.current_title", "contact.business_emails"],
        },
    ),
    "sf-founders-small": Task(
        prose="Founders of companies with 2 to 50 employees in San Francisco.",
        first={
            "filters": _and(
                _leaf(TITLE, "(.)", "Founder"),
                _leaf("experience.employment_details.current.company_size", "in", ["2-10", "11-50"]),
                _leaf("city", "=", "San Francisco"),
            ),
            "limit": 5,
        },
        hints=(
            "'experience.employment_details.current.company_size' (nearest: "
            "experience.employment_details.current.company_headcount_range",
            "'city' (nearest: basic_profile.location.city",
        ),
        second={
            "filters": _and(
                _leaf(TITLE, "(.)", "Founder"),
                _leaf("experience.employment_details.current.company_headcount_range", "in", ["2-10", "11-50"]),
                _leaf("basic_profile.location.city", "=", "San Francisco"),
            ),
            "limit": 5,
        },
    ),
    "india-python-engineers": Task(
        prose="Software engineers in India who list Python, best connected first.",
        first={
            "filters": _and(
                _leaf(TITLE, "contains", "Software Engineer"),
                _leaf("skills", "=", "Python"),
                _leaf("basic_profile.location.country", "=", "India"),
            ),
            "sorts": [{"field": "connections", "order": "DESC"}],
            "limit": 5,
        },
        hints=(
            "'skills' (nearest: skills.professional_network_skills)",
            "Nearest sortable: professional_network.connections",
        ),
        second={
            "filters": _and(
                _leaf(TITLE, "contains", "Software Engineer"),
                _leaf("skills.professional_network_skills", "=", "Python"),
                _leaf("basic_profile.location.country", "=", "India"),
            ),
            "sorts": [{"field": "professional_network.connections", "order": "DESC"}],
            "limit": 5,
        },
    ),
}


async def _attempt(client: Client, arguments: dict[str, Any]) -> tuple[bool, str, dict[str, Any]]:
    result = await client.call_tool("search_then_enrich", arguments)
    text = text_of(result)
    if result.is_error:
        return False, text, {}
    data = cast(dict[str, Any], json.loads(text))
    return bool(data["people"]), text, data


@pytest.mark.anyio
@pytest.mark.parametrize("revision", ["current"], indirect=True)
@pytest.mark.parametrize("name", list(TASKS))
async def test_a_search_task_written_from_the_descriptions_succeeds_first_time_or_after_one_guided_retry(
    client: Client, upstream: Upstream, name: str
) -> None:
    task = TASKS[name]
    found, answer, _ = await _attempt(client, task.first)
    if task.second is None:
        assert found, f"{task.prose}: {answer[:600]}"
        return
    assert not found, f"{task.prose}: the first try was expected to need the second"
    assert '"code":"invalid_input"' in answer and "Nothing was sent or spent" in answer
    upstream.assert_nothing_billable_sent()  # a refused try costs nothing
    for hint in task.hints:  # the answer names everything the second try fixes
        assert hint in answer, f"{task.prose}: {hint!r} not in {answer[:800]}"
    found, answer, data = await _attempt(client, task.second)
    assert found, f"{task.prose}: {answer[:600]}"
    if name == "us-marketing-directors-emails":  # the headline task ran without confirmation, under 10.15 credits
        assert data["receipt"]["estimated"] == "10.15"


def test_the_count_of_first_and_second_try_successes_is_as_documented() -> None:
    first = [name for name, task in TASKS.items() if task.second is None]
    second = [name for name, task in TASKS.items() if task.second is not None]
    assert (len(TASKS), len(first), len(second)) == (5, 1, 4)
