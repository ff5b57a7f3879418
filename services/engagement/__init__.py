"""Engagement: welcomes, auto-replies, check-ins, points and member profiles."""
