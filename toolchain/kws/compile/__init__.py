"""kws compile stage."""
