"""Benchmarks and the process helpers the benchmark and the server tests share."""
