"""The live network view: a page served by qkdnet itself (no build step, no internet)."""
