"""kws bench stage."""
