"""Evaluation: the cross-client accuracy matrix and the metrics derived from it."""
