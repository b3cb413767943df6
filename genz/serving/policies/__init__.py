"""Scheduling policies beyond vLLM's, one file each, registered by name (see docs/architecture.md)."""

from genz.serving.policies import guaranteed_no_evict  # noqa: F401  (registers itself)
