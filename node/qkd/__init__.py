"""Sans-I/O BB84 link engine: pure kernels over numpy arrays.

Nothing in this package may import grpc, asyncio, sockets or read a clock: every stage takes
arrays and an explicit ``np.random.Generator`` and returns arrays or frozen dataclasses, so the
same code runs in memory in tests and between node processes over gRPC.
"""
