"""Leaderboards rendered from the results store."""
