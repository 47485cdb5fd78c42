"""Schema analysis: introspect the source, classify tables, write and validate tables.yml."""
