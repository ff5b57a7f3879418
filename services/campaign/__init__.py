"""Campaign: SOP schedules, broadcasts, live codes, fission tasks and coupons."""
