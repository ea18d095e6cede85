"""Test helpers shared across the suite (real peers, schemas, fixtures)."""
