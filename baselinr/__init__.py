"""Baselinr: profile SQL warehouse tables from a reviewable, resumable execution plan."""

__version__ = "0.1.0"
