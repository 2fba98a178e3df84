"""lm-evaluation-harness integration: the TBD task class and its registered aggregations."""
