"""Key custody inside one trusted node: link-key pools per neighbour and end-to-end keys."""
