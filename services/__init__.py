"""Shequn: the five services (ingestion, moderation, engagement, campaign, analytics)
and the runtime they share."""
