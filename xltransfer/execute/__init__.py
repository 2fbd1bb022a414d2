"""Executors run a plan: train each missing piece once, evaluate each unfinished cell, record results."""

from __future__ import annotations

EXECUTORS = ("local", "ray")
