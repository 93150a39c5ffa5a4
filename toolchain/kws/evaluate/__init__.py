"""kws evaluate stage."""
