"""agents/train."""
