"""The spec language: pydantic models of the YAML config and the loader."""

from baselinr.config.loader import load_config, parse_config
from baselinr.config.models import (
    ALL_METRICS,
    BaselinrConfig,
    ConnectionConfig,
    ExecutionConfig,
    HookConfig,
    HooksConfig,
    MonitoringConfig,
    ProfilingConfig,
    RetryConfig,
    StorageConfig,
    TableSelection,
)

__all__ = [
    "ALL_METRICS", "BaselinrConfig", "ConnectionConfig", "ExecutionConfig", "HookConfig", "HooksConfig",
    "MonitoringConfig", "ProfilingConfig", "RetryConfig", "StorageConfig", "TableSelection",
    "load_config", "parse_config",
]
