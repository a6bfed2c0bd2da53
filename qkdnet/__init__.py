"""qkdnet: a distributed emulator of trusted-node QKD networks.

The source keeps the design card's folders (``node/``, ``orchestrator/``, ``topologies/`` at the
top of the checkout); ``qkdnet/`` links them in, so that everything installs and imports under
this one name and never as ``node`` or ``orchestrator``, names other distributions use.
"""
