"""Ingestion: the platform gateway. Events in (the generic API; WeCom and Telegram next),
actions out."""
