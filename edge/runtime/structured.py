"""Schema-constrained decoding: a JSON Schema becomes a token mask (llguidance) applied before each sample.

The grammar forces the output to be a document of the schema whatever the model's logits say, so even the
random ``tiny`` model writes valid reports; the finished text is parsed and validated again with
``jsonschema`` before it is returned as a report. Schemas are compiled once and cached by their hash.

>>> out = StructuredOutput(tokenizer_json, vocab_size=262_144, eos_ids=[1, 106])
>>> schema = out.compile(schema_text)                   # SchemaError naming llguidance's complaint
>>> c = out.constraint(schema)
>>> token = sampler(c.masked(logits)); c.accept(token)   # once per generated token
>>> report, error = schema.parse(generated_text)
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from edge.errors import SchemaError

MAX_CACHED = 32


@dataclass(frozen=True)
class ResponseSchema:
    """A compiled JSON Schema: its canonical text, hash, llguidance grammar and a jsonschema validator."""

    text: str  # canonical JSON (sorted keys, no spaces): what the hash covers
    sha256: str
    grammar: str
    validator: Any

    def parse(self, text: str) -> tuple[Any, str]:
        """``(report, "")`` when ``text`` is a document of the schema, else ``(None, why not)``.

        Numbers are checked as decimals, as written (``0.29`` is a multiple of ``0.01``, which binary
        floats get wrong); the report itself has ordinary floats.
        """
        try:
            exact = json.loads(text, parse_float=Decimal)
        except json.JSONDecodeError as exc:
            return None, f"the output is not complete JSON ({exc.msg} at character {exc.pos})"
        errors = sorted(self.validator.iter_errors(exact), key=lambda e: list(e.absolute_path))
        if errors:
            e = errors[0]
            where = "/".join(str(p) for p in e.absolute_path) or "the document"
            return None, f"the output does not match the schema at {where}: {e.message}"
        return json.loads(text), ""


def parse_schema(schema_text: str) -> dict[str, Any]:
    """The schema as a dict, checked to be JSON and a valid JSON Schema; no tokenizer needed (start-up checks)."""
    try:
        schema = json.loads(schema_text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if not isinstance(schema, dict):
        raise SchemaError(f"a JSON Schema is an object, got {type(schema).__name__}")
    check_schema(schema)
    return schema


def decimal_validator(schema_text: str) -> Any:
    """A jsonschema validator for ``schema_text`` whose numbers are decimals, as written: documents read with
    ``parse_float=Decimal`` are checked exactly (see :meth:`ResponseSchema.parse`)."""
    exact = json.loads(schema_text, parse_float=Decimal)
    return check_schema(exact)(exact)


def check_schema(schema: dict[str, Any]) -> Any:
    """The validator class for ``schema`` after checking it against its meta-schema."""
    import jsonschema

    try:
        validator_cls = jsonschema.validators.validator_for(schema)
        validator_cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SchemaError(f"not a valid JSON Schema: {exc.message}") from None
    return validator_cls


class StructuredOutput:
    """Compiles schemas against one bundle's tokenizer and makes per-generation constraints. Thread-safe."""

    def __init__(self, tokenizer_json: str, vocab_size: int, eos_ids: Sequence[int]) -> None:
        import llguidance

        self.vocab_size = vocab_size
        self._tokenizer = llguidance.LLTokenizer(tokenizer_json, n_vocab=vocab_size, eos_token=list(eos_ids))
        self._cache: OrderedDict[str, ResponseSchema] = OrderedDict()
        self._lock = threading.Lock()

    def compile(self, schema_text: str) -> ResponseSchema:
        """Parse, check and compile a JSON Schema; SchemaError with the reason when it cannot be used."""
        import llguidance

        schema = parse_schema(schema_text)
        canonical = json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        digest = hashlib.sha256(canonical.encode()).hexdigest()
        with self._lock:
            if digest in self._cache:
                self._cache.move_to_end(digest)
                return self._cache[digest]
        validator = decimal_validator(schema_text)
        try:
            # the grammar keeps the author's property order (the model writes the fields in that order)
            ordered = json.dumps(schema, separators=(",", ":"), ensure_ascii=False)
            grammar = llguidance.LLMatcher.grammar_from_json_schema(ordered, defaults={"whitespace_flexible": False})
            failed, problems = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, self._tokenizer)
        except (ValueError, RuntimeError, TypeError) as exc:
            raise SchemaError(f"the constrained decoder cannot compile it: {exc}") from None
        if failed:
            raise SchemaError(f"the constrained decoder cannot compile it: {'; '.join(problems) or 'unknown error'}")
        compiled = ResponseSchema(canonical, digest, grammar, validator)
        with self._lock:
            self._cache[digest] = compiled
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
        return compiled

    def constraint(self, schema: ResponseSchema) -> Constraint:
        return Constraint(self._tokenizer, schema, self.vocab_size)


class Constraint:
    """One generation's grammar state: masks logits, follows the chosen tokens."""

    def __init__(self, tokenizer: Any, schema: ResponseSchema, vocab_size: int) -> None:
        import llguidance
        from llguidance.numpy import allocate_token_bitmask

        self.schema = schema
        self._matcher = llguidance.LLMatcher(tokenizer, schema.grammar)
        if self._matcher.is_error():
            raise SchemaError(f"the constrained decoder failed to start: {self._matcher.get_error()}")
        self._bitmask = allocate_token_bitmask(1, vocab_size)
        self._vocab = vocab_size

    def allowed(self) -> np.ndarray:
        """Boolean ``[vocab]``: the tokens that keep the output a prefix of a valid document."""
        from llguidance.numpy import fill_next_token_bitmask

        fill_next_token_bitmask(self._matcher, self._bitmask)
        return np.unpackbits(self._bitmask[0].view(np.uint8), count=self._vocab, bitorder="little").view(bool)

    def masked(self, logits: np.ndarray) -> np.ndarray:
        """A copy of ``logits`` with every token the grammar forbids at -inf."""
        x = np.asarray(logits, dtype=np.float32).reshape(-1)
        allowed = self.allowed()[: x.size]
        out = np.full(x.shape, -np.inf, dtype=np.float32)  # logits past the tokenizer's vocabulary stay -inf
        # a masked copy, not boolean indexing: 9 µs instead of 59 on a 32k vocabulary (it runs once per token)
        np.copyto(out[: allowed.size], x[: allowed.size], where=allowed)
        return out

    def accept(self, token: int) -> None:
        if not self._matcher.consume_token(int(token)):
            raise SchemaError(f"token {token} is not allowed by the schema: {self._matcher.get_error()}")

    @property
    def complete(self) -> bool:
        """The output so far is a whole document (end-of-turn is allowed now)."""
        return bool(self._matcher.is_accepting())
