"""Goldmane's gRPC API: ``goldmane.proto`` (Calico's, verbatim; Apache-2.0) and the Python modules
generated from it (``goldmane_pb2``, ``goldmane_pb2_grpc``), committed as generated. Regenerate
them with ``make proto`` (``tools/generate_proto.py``), never by hand. Importing them needs the
``collect`` extra (grpcio, protobuf)."""
