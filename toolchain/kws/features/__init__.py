"""kws features stage."""
