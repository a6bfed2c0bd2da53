"""End-to-end key relay: the one-time-pad XOR, the engine that forwards keys hop by hop, the
presumed-abort outbox, multipath XOR shares, and the typed values a relay travels with.

Layer: node domain (no grpc, no aiohttp)."""
