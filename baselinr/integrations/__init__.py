"""Optional integrations with orchestrators. Each lives in its own subpackage and is the only
place that imports its third-party library, so the core runs without it installed."""
