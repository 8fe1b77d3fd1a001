"""Data: sources (file formats), shifts and partitions, and named benchmarks that make per-client splits."""
