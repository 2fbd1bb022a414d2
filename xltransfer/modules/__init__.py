"""Adapter and hypernetwork building blocks shared by methods."""
