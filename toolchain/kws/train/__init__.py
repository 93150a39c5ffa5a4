"""kws train stage."""
