"""Fuzzing every route from the farm's own OpenAPI description (schemathesis, hypothesis).

Valid and invalid inputs for each operation of ``/openapi.json`` go to a real farm over HTTP: not one
may answer 5xx or take longer than 10 s, and a valid run still completes afterwards. The farm is its
own (the fuzzer clears queues, deletes history and writes user data). Examples are derandomized, so
a failure here reproduces on the next run; the counts are printed at the end (docs/reliability.md).
"""

from __future__ import annotations

import collections
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import FlakyStrategyDefinition, Unsatisfiable
from schemathesis import GenerationMode

from tests.farm import Farm

# ~1,200 requests over every operation of /openapi.json take ~100 s on 2 cores: more than the suite's 120 s
# default leaves; a hang is a single request past REQUEST_TIMEOUT_S, not this budget
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(360)]

EXAMPLES = 20  # per operation and mode
REQUEST_TIMEOUT_S = 10
TALLY: collections.Counter[str] = collections.Counter()


@pytest.fixture(scope="module")
def fuzz_farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    f = Farm(Path(tmp_path_factory.mktemp("fuzz")), workers=1)
    yield f
    f.stop()


def test_no_route_answers_5xx_or_hangs(fuzz_farm: Farm) -> None:
    schema = schemathesis.openapi.from_url(fuzz_farm.url + "/openapi.json")
    schema.config.generation.update(allow_x00=True)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40, [op.label for op in operations]

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            def send(case: schemathesis.Case) -> None:
                try:
                    response = case.call(base_url=fuzz_farm.url, timeout=REQUEST_TIMEOUT_S)
                except requests.Timeout:
                    TALLY["hung"] += 1
                    failures.append(f"{case.method} {case.formatted_path}: no answer in {REQUEST_TIMEOUT_S} s")
                    return
                TALLY["requests"] += 1
                TALLY[f"{response.status_code // 100}xx"] += 1
                if response.status_code >= 500:
                    failures.append(f"{case.method} {case.formatted_path} {case.query} {str(case.body)[:200]!r}: "
                                    f"{response.status_code} {response.text[:300]}")

            try:
                send()
            except Unsatisfiable:  # nothing invalid to send (an operation without input) in negative mode
                TALLY["modes without cases"] += 1
            except FlakyStrategyDefinition:  # the generator's own nondeterminism (schemathesis), not ours:
                TALLY["generator retries"] += 1  # what was sent until then was checked; send a new series
                send()
    TALLY["operations"] = len(operations)
    assert not failures, "\n".join(failures[:30])


def test_the_description_covers_every_route_family(fuzz_farm: Farm) -> None:
    paths = requests.get(fuzz_farm.url + "/openapi.json", timeout=10).json()["paths"]
    for path in ("/prompt", "/queue", "/history", "/history/{prompt_id}", "/interrupt", "/view", "/upload/image",
                 "/upload/mask", "/object_info", "/system_stats", "/free", "/settings", "/userdata",
                 "/userdata/{file}", "/api/jobs", "/api/jobs/cancel", "/internal/logs", "/nodefarm/runs/{prompt_id}/events"):
        assert path in paths, path
    assert "requestBody" in paths["/prompt"]["post"]
    assert {p["name"] for p in paths["/view"]["get"]["parameters"]} >= {"filename", "type", "subfolder"}


def test_a_valid_run_completes_after_the_fuzzing(fuzz_farm: Farm) -> None:
    entry = fuzz_farm.run({"1": {"class_type": "PrimitiveFloat", "inputs": {"value": 2.5}},
                           "2": {"class_type": "TestFloatOutput", "inputs": {"value": ["1", 0]}}}, timeout=90)
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"]["2"] == {"text": ["2.5"]}
    running = requests.get(fuzz_farm.url + "/queue", timeout=10).json()["queue_running"]
    assert running == [], running  # nothing the fuzzer sent is left holding a slot
    print(f"\nfuzz: {dict(TALLY)}")
