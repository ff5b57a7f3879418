"""Detection: plain, I/O-free code that takes a message and a ruleset and returns a verdict with
every check's own answer. The moderation service's edges feed it and act on what it says."""
