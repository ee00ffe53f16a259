"""Shared test code of live collection: certificates, a Goldmane gRPC server, process harnesses."""
