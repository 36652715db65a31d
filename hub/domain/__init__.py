"""The domain layer: pure models and rules, no I/O (no SQL, no HTTP)."""
