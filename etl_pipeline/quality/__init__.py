"""Data quality: source vs raw parity checks."""
