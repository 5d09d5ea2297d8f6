"""Generated gRPC/protobuf code for the edge.v1 API (from proto/edge/v1; do not edit)."""
