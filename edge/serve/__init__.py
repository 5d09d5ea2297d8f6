"""The station daemon: gRPC service, scheduler, metrics."""
