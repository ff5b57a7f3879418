"""Every metric the runtime exports, declared once. Labels are bounded: consumer names, topics,
partitions, event types and statuses; never group or member ids, and tenant ids on one gauge
only (`TENANT_LAST_EVENT`: a series per tenant with an API key, for the tenant gone quiet)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONSUMED = Counter(
    "shequn_consumed_messages_total",
    "Messages read from Kafka by a consumer.",
    ["consumer", "topic"],
)
PRODUCED = Counter("shequn_produced_messages_total", "Messages written to Kafka.", ["topic"])
HANDLER_SECONDS = Histogram(
    "shequn_handler_seconds",
    "Time a consumer's batch handler took, per batch.",
    ["consumer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_SIZE = Histogram(
    "shequn_batch_messages",
    "Messages per handled batch.",
    ["consumer"],
    buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 2000),
)
HANDLER_ERRORS = Counter(
    "shequn_handler_errors_total", "Handler attempts that raised.", ["consumer"]
)
RETRIES = Counter("shequn_handler_retries_total", "Handler attempts made again.", ["consumer"])
DEAD_LETTERED = Counter(
    "shequn_dead_lettered_total", "Messages sent to the dead-letter topic.", ["consumer", "reason"]
)
CONSUMER_LAG = Gauge(
    "shequn_consumer_lag",
    "Messages in a partition not yet committed by the consumer group.",
    ["consumer", "topic", "partition"],
)
HTTP_REQUESTS = Counter(
    "shequn_http_requests_total", "HTTP requests served.", ["method", "route", "status"]
)
HTTP_SECONDS = Histogram(
    "shequn_http_request_seconds", "HTTP request latency.", ["method", "route"]
)
EVENTS_INGESTED = Counter(
    "shequn_events_ingested_total", "Events offered to ingestion, by result.", ["type", "status"]
)
TENANT_LAST_EVENT = Gauge(
    "shequn_tenant_last_event_timestamp_seconds",
    "When ingestion last accepted an event of the tenant (Unix time).",
    ["tenant"],
)
EVENTS_ANALYZED = Counter(
    "shequn_analytics_events_total",
    "Events analytics consumed, by type (redeliveries too).",
    ["type"],
)
WEBHOOK_UPDATES = Counter(
    "shequn_webhook_updates_total",
    "Platform webhook deliveries, by platform, update kind and what became of them.",
    ["platform", "kind", "outcome"],
)
ACTIONS_FINISHED = Counter(
    "shequn_actions_finished_total",
    "Actions delivered, failed or unsupported, by platform and type.",
    ["platform", "type", "status"],
)
MODERATION_DECISIONS = Counter(
    "shequn_moderation_decisions_total",
    "Moderation decisions made, by rule and penalty (a batch handled again counts again).",
    ["rule", "penalty"],
)
PICTURES = Counter(
    "shequn_moderation_pictures_total",
    "Pictures moderation looked at for QR codes, by outcome: read, cached, failed (download), "
    "too_large, unreadable (not a picture), unsupported (not an http(s) or data: URL), "
    "refused (the host is not a public address).",
    ["outcome"],
)
CHECKINS = Counter(
    "shequn_checkins_total",
    "Check-in messages, by outcome: new, again (delivered again), already (that day), late.",
    ["outcome"],
)
POINTS_BOOKED = Counter(
    "shequn_points_booked_total", "Balance changes booked, by kind of source.", ["source"]
)
DRAWS = Counter(
    "shequn_lottery_draws_total",
    "Lottery draws, by outcome: won, blank, sold_out, insufficient_points.",
    ["outcome"],
)
AUTOREPLIES = Counter("shequn_autoreplies_total", "Auto-replies sent, by kind of reply.", ["kind"])
WELCOMES = Counter(
    "shequn_welcomes_total", "Welcome messages sent: single, or combined for several.", ["kind"]
)
RED_PACKETS = Counter(
    "shequn_red_packets_total",
    "Red-packet payouts: paid, or refused over the budget.",
    ["kind", "outcome"],
)
COUPONS_ISSUED = Counter(
    "shequn_coupons_issued_total", "Coupon codes issued, by occasion (entry, api).", ["occasion"]
)
ENTRY_COUPONS_MISSED = Counter(
    "shequn_entry_coupons_missed_total",
    "Newcomers welcomed without their entry coupon: no_coupon, sold_out, blacklisted.",
    ["reason"],
)
LIVECODE_SCANS = Counter(
    "shequn_livecode_scans_total", "Live-code scans, by outcome: reserved, full.", ["outcome"]
)
LIVECODES_LOW = Counter(
    "shequn_livecodes_low_total", "Times a live code's pool fell under its low mark of free places."
)
BROADCASTS = Counter("shequn_broadcasts_total", "Broadcasts sent (each once, retried or not).")
BROADCAST_DELIVERIES = Counter(
    "shequn_broadcast_deliveries_total",
    "Outcomes of broadcasts' messages: delivered, awaiting_confirmation, failed, unsupported.",
    ["outcome"],
)
SOP_SLOTS = Counter(
    "shequn_sop_slots_total", "SOP slots come due: fire, or missed (after the grace).", ["fate"]
)
FISSION_INVITEES = Counter(
    "shequn_fission_invitees_total",
    "Joins through fission invite codes: joined (counting once they stay), counted, left, or "
    "not counted (self_invite, blacklisted, inviter_blacklisted, returning, ended).",
    ["outcome"],
)
FISSION_REWARDS = Counter(
    "shequn_fission_rewards_total",
    "Fission tasks completed, by what became of the reward: given, refused (blacklisted).",
    ["outcome"],
)
REWARDS_EARNED = Counter(
    "shequn_rewards_earned_total",
    "Rewards engagement booked for campaign (reward_earned): points, red_packet, or "
    "red_packet_refused (off, over the budget).",
    ["kind"],
)
TIER_INVITATIONS = Counter(
    "shequn_tier_invitations_total", "Invitations up the tier ladder sent (each once)."
)


def at_zero(counter: Counter, *values: str) -> None:
    """Export these label values at 0 from the start: increase() sees the first one, and the
    dashboards find a series before anything happened (a service calls it for its own)."""
    for value in values:
        counter.labels(value)
