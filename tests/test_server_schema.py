"""The HTTP API against its own OpenAPI description, property-based (schemathesis): for any
request the schema allows, and for requests it does not, the server answers with a status code
and a body the schema documents, and never with a 500."""

from pathlib import Path

import pytest

pytest.importorskip("fastapi")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from lingshu.inference.pipeline import load_pipeline  # noqa: E402
from lingshu.inference.server import create_app  # noqa: E402

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
APPS = {name: create_app(load_pipeline(LEGACY / name, device="cpu"), max_text_chars=200, max_texts=8)
        for name in ("ner-crf-bert", "re-bert", "pair-bert")}
# a request over a documented limit (maxItems, maxLength) is refused with 413, as the schema's
# responses say; schemathesis expects 4xx codes other than 413 for schema-violating data by default
CONFIG = schemathesis.config.SchemathesisConfig.from_str("""
[checks.negative_data_rejection]
expected-statuses = ["400", "401", "404", "405", "406", "413", "415", "422"]
""")
SCHEMAS = {name: schemathesis.openapi.from_asgi("/openapi.json", app, config=CONFIG) for name, app in APPS.items()}


NER, RE, PAIR = SCHEMAS["ner-crf-bert"], SCHEMAS["re-bert"], SCHEMAS["pair-bert"]
FEW = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


def _check(case):
    response = case.call_and_validate()
    assert response.status_code < 500, response.text


@NER.parametrize()
@FEW
def test_ner_api_conforms_to_its_schema(case):
    _check(case)


@RE.parametrize()
@FEW
def test_re_api_conforms_to_its_schema(case):
    _check(case)


@PAIR.parametrize()
@FEW
def test_pair_api_conforms_to_its_schema(case):
    _check(case)
