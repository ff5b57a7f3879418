"""Moderation: group rules (群规) enforced in real time."""
