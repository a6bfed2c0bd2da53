"""gRPC adapters of the node: servicers, peer clients and the message conversions."""
