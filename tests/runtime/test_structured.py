"""Schema-constrained decoding on the real random tiny model: whatever the logits say, reports are valid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge.errors import SchemaError
from edge.runtime.engine import Engine, GenerationParams
from edge.runtime.sampling import SamplingParams


@pytest.fixture(scope="module")
def engine(int4_bundle: Path) -> Engine:
    return Engine(int4_bundle, threads=1)


WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz _-", min_size=1, max_size=12)
leaves = st.one_of(
    st.just({"type": "boolean"}),
    st.lists(WORDS, min_size=1, max_size=5, unique=True).map(lambda v: {"enum": v}),
    st.tuples(st.integers(-50, 50), st.integers(0, 100)).map(
        lambda t: {"type": "integer", "minimum": t[0], "maximum": t[0] + t[1]}
    ),
    st.tuples(st.integers(-5, 5), st.integers(1, 10)).map(
        lambda t: {"type": "number", "minimum": t[0], "maximum": t[0] + t[1]}
    ),
    st.integers(1, 40).map(lambda n: {"type": "string", "maxLength": n}),
)


def _object(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    def build(props: dict[str, Any], required: list[bool]) -> dict[str, Any]:
        names = list(props)
        req = [n for n, r in zip(names, required, strict=False) if r] or names[:1]
        return {"type": "object", "properties": props, "required": req, "additionalProperties": False}

    return st.builds(
        build, st.dictionaries(WORDS, children, min_size=1, max_size=4), st.lists(st.booleans(), max_size=4)
    )


def _array(children: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda items, lo, extra: {"type": "array", "items": items, "minItems": lo, "maxItems": lo + extra},
        children,
        st.integers(0, 2),
        st.integers(0, 2),
    )


schemas = _object(st.recursive(leaves, lambda c: st.one_of(_object(c), _array(c)), max_leaves=6))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=schemas, seed=st.integers(0, 2**32 - 1), greedy=st.booleans())
def test_every_report_is_a_valid_document_of_its_schema(engine: Engine, schema: dict, seed: int, greedy: bool) -> None:
    import jsonschema

    sampling = SamplingParams() if greedy else SamplingParams(temperature=1.0, top_p=0.95, seed=seed)
    params = GenerationParams(max_new_tokens=600, sampling=sampling, schema=engine.compile_schema(json.dumps(schema)))
    result = engine.generate("Report the defect as JSON.", params=params)
    if result.stop_reason == "max_new_tokens":  # an unbounded number's digits can outlast any budget: said, not faked
        assert result.report is None and result.report_error.startswith("max_new_tokens (600) ran out"), result
        return
    assert result.stop_reason == "eos" and not result.report_error, result.report_error
    jsonschema.validate(result.report, schema)
    assert json.loads(result.text) == result.report


def test_greedy_reports_are_reproducible_and_the_budget_is_reported(engine: Engine) -> None:
    schema = engine.compile_schema(
        json.dumps(  # a bounded document: whatever the random model prefers, it must close within the budget
            {
                "type": "object",
                "properties": {"d": {"type": "string", "maxLength": 30}},
                "required": ["d"],
                "additionalProperties": False,
            }
        )
    )
    a = engine.generate("Describe.", params=GenerationParams(max_new_tokens=200, schema=schema))
    b = engine.generate("Describe.", params=GenerationParams(max_new_tokens=200, schema=schema))
    assert a.text == b.text and a.report == b.report and a.report is not None
    short = engine.generate("Describe.", params=GenerationParams(max_new_tokens=3, schema=schema))
    assert short.stop_reason == "max_new_tokens" and short.report is None
    assert short.report_error.startswith("max_new_tokens (3) ran out before the JSON report was complete")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "not valid JSON: "),
        ("[1, 2]", "a JSON Schema is an object, got list"),
        ('{"type": "nonsense"}', "not a valid JSON Schema: "),
        ('{"type": "object", "properties": {"a": {"$ref": "#/nowhere"}}}', "cannot compile it"),
    ],
)
def test_unusable_schemas_are_refused_with_the_reason(engine: Engine, text: str, message: str) -> None:
    with pytest.raises(SchemaError, match=message):
        engine.compile_schema(text)


def test_compiled_schemas_are_cached_by_content(engine: Engine) -> None:
    a = engine.compile_schema('{"type": "object", "properties": {"x": {"type": "boolean"}}}')
    b = engine.compile_schema('{"properties": {"x": {"type": "boolean"}}, "type": "object"}')
    assert a is b and a.sha256 == b.sha256


def test_numbers_are_checked_as_written_decimals(engine: Engine) -> None:
    schema = engine.compile_schema('{"type": "number", "minimum": 0, "maximum": 1, "multipleOf": 0.01}')
    assert schema.parse("0.29") == (0.29, "")  # 0.29 / 0.01 is not an integer in binary floating point
    report, error = schema.parse("0.295")
    assert report is None and "Decimal('0.295') is not a multiple of 0.01" in error
    assert schema.parse("0.2")[0] == 0.2 and schema.parse("{")[1].startswith("the output is not complete JSON")
