#!/usr/bin/env bash
# Regenerate the committed Python code for proto/ (run from the repository root).
set -euo pipefail
out="${1:-.}"
python -m grpc_tools.protoc -I proto --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
  proto/qkdnet_proto/v1/node.proto
