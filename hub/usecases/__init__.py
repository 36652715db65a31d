"""The application layer: use cases built on the store (verify, demo, and later ingestion)."""
