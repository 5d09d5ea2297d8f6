"""Benchmark programs behind ``edge bench``: figures for the README, never thresholds in tests."""
