"""Analytics: daily statistics and funnels, counted exactly once under redelivery."""
