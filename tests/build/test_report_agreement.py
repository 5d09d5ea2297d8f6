"""How the agreement measurement reads a free-text answer, and the corpus samples it is drawn from."""

from __future__ import annotations

import json

from edge.build.fixtures.corpus import DEFECTS, pairs
from edge.build.report_agreement import named_defect, sound_clip
from edge.runtime.audio import audio_frames
from edge.station.report import REGIONS, default_report_schema


def test_named_defect_reads_the_first_defect_and_good_parts() -> None:
    assert named_defect("The gear on line 3 has a minor missing screw at the top.") == "missing screw"
    assert named_defect("The gear has a dent at the top. Recommended: check for a crack.") == "dent"
    assert named_defect("The panel on line 2 looks good. No defect found.") == "none"
    assert named_defect("The panel on line 2 is") is None


def test_corpus_json_answers_are_documents_of_the_built_in_schema() -> None:
    import jsonschema

    schema = default_report_schema(DEFECTS)
    answers = [a for p, a in pairs(400, seed=5) if "JSON" in p]
    assert len(answers) > 50
    for answer in answers:
        doc = json.loads(answer)  # the whole answer: what the microphone heard is in the description
        jsonschema.validate(doc, schema)
        assert doc["location"]["region"] in REGIONS
        assert json.dumps(doc, separators=(",", ":")) == answer  # compact, in the schema's field order
        assert list(doc) == list(schema["properties"])


def test_sound_clip_is_frames_of_the_signature() -> None:
    frames = audio_frames(sound_clip("a clean run", frames=3))
    assert frames.shape == (3, 640) and (frames[0] == frames[2]).all()
    assert not (frames[0] == audio_frames(sound_clip("a grinding noise", frames=1))[0]).all()
