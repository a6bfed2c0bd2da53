"""HTTP adapters of a node: the aiohttp server the KME and /metrics share, and /metrics itself."""
