"""agents/evaluate."""
