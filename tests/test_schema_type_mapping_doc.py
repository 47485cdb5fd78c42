"""TYPE_MAPPING.md carries exactly the table in etl_pipeline.type_mapping's docstring."""

from __future__ import annotations

from etl_pipeline import type_mapping
from etl_pipeline.settings import PROJECT_ROOT


def _table_rows(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip().startswith("|")]


def test_markdown_table_matches_the_docstring():
    doc = (PROJECT_ROOT / "etl_pipeline" / "schema" / "TYPE_MAPPING.md").read_text()
    rows = _table_rows(type_mapping.__doc__)
    assert len(rows) > 20
    assert _table_rows(doc) == rows


def test_every_documented_target_is_what_the_mapping_returns():
    samples = {
        "tinyint": "smallint",
        "smallint unsigned": "integer",
        "int": "integer",
        "int unsigned": "bigint",
        "bigint": "bigint",
        "bigint unsigned": "numeric(20,0)",
        "decimal(10,2)": "numeric(10,2)",
        "float": "real",
        "double": "double precision",
        "bit(1)": "boolean",
        "bit(5)": "bit varying(5)",
        "year": "smallint",
        "date": "date",
        "datetime(3)": "timestamp(3)",
        "timestamp": "timestamptz",
        "time": "interval",
        "varchar(5)": "text",
        "longtext": "text",
        "varbinary(3)": "bytea",
        "enum('a')": "text",
        "set('a')": "text[]",
        "json": "jsonb",
        "geometry": "bytea",
    }
    doc_rows = "\n".join(_table_rows(type_mapping.__doc__))
    for source, target in samples.items():
        assert type_mapping.map_column_type(source).pg_type == target, source
        assert f"| {target.split('(')[0]}" in doc_rows, target
