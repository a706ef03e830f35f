"""Loopback helpers shared by the tests, the fakes and the benchmarks: the deployment's own
(`deploy.stack`), so a free port is found one way everywhere."""

from __future__ import annotations

from deploy.stack import free_port

__all__ = ["free_port"]
