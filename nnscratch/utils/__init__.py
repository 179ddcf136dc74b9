"""Metrics, data sets, plots and file helpers."""
