"""Text matching that moderation and engagement share: normalization that undoes evasions and
keeps the way back to the original (`normalize`), and one multi-pattern matcher (`words`)."""
