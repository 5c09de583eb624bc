"""summary.json is the JSON of one typed record (peakload.core.summary.Summary), and that record and the schema agree."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from pydantic import ValidationError

from peakload.core import parse_threshold
from peakload.core.summary import RequestRow, Summary, ThresholdRow
from reports.build import write_reports
from reports.synthetic import write_synthetic_run

SCHEMA = json.loads((Path(__file__).parents[2] / "reports" / "summary.schema.json").read_text())


def _fields(model: type) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def test_summary_json_is_the_record_and_validates(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=3, seconds=10)
    report = write_reports(run, [parse_threshold("all", "error_ratio < 1%"), parse_threshold("GET /nowhere", "p95 < 1s", source="slo:x")])
    on_disk = json.loads((run / "summary.json").read_text())
    jsonschema.validate(on_disk, SCHEMA)
    assert on_disk == report.summary.to_json()
    # read back into the record: the same object, typed
    again = Summary.model_validate(on_disk)
    assert again == report.summary
    assert isinstance(again.total, RequestRow) and isinstance(again.thresholds[0], ThresholdRow)
    assert [t.passed for t in again.thresholds] == [True, None]


def test_the_record_and_the_schema_name_the_same_fields() -> None:
    assert _fields(Summary) == set(SCHEMA["properties"])
    assert _fields(RequestRow) == set(SCHEMA["$defs"]["request"]["properties"])
    assert _fields(ThresholdRow) == set(SCHEMA["$defs"]["threshold"]["properties"])
    required = {f.alias or n for n, f in Summary.model_fields.items() if f.is_required()}
    assert required <= set(SCHEMA["required"])  # what the record insists on, the schema does too
    # the enums are the same
    assert set(Summary.model_fields["status"].annotation.__args__) == set(SCHEMA["properties"]["status"]["enum"])
    assert set(Summary.model_fields["decided_by"].annotation.__args__) == set(SCHEMA["properties"]["decided_by"]["enum"])


def test_the_record_refuses_what_the_schema_refuses(tmp_path: Path) -> None:
    run = tmp_path / "run"
    write_synthetic_run(run, names=1, seconds=4)
    good = write_reports(run, []).summary.to_json()
    for field, bad in (("status", "fine"), ("exit_code", 2), ("duration_s", -1), ("run_id", "")):
        broken = {**good, field: bad}
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMA)
        with pytest.raises(ValidationError):
            Summary.model_validate(broken)
    with pytest.raises(ValidationError):
        Summary.model_validate({**good, "surprise": 1})  # an unknown field is a typo in a writer
