"""`qkdnet experiment`: compare routing strategies on the real node processes."""
