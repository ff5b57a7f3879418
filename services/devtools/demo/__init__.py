"""`shequn demo`: a week in the life of a tenant on the simulated platform, sent to a running dev
stack through the public HTTP APIs.

Two halves. The scenario builder (`build_scenario` and the small event constructors) is plain
code: a seed and "now" in, event and action bodies out, no I/O, so a test can check every event
against ingestion's own validator. The story is the 7 days before today (Asia/Shanghai): all of
it is in the past, and it is the same story whatever the time of day. The sender (`run_demo`)
posts the events in batches of 500 with a few requests in flight, waits until the pipeline has
counted them, asks for a few operator actions, dedupes the 福利 series (a dry run, then the plan
applied) and prints where to look.

Every id follows from the seed and a counter, so running the demo again with the same seed sends
the same events, which ingestion absorbs as duplicates, and the same action ids, which delivery
answers from its ledger instead of acting twice; its dedupe dry run finds nobody left to remove.

The package in four parts: `cast.py` (people, groups, words, pictures), `scenario.py` (the week as
a scenario, no I/O), `sender.py` (the dev stack's HTTP APIs) and `run.py` (`run_demo`: send,
wait, dedupe, summarise).
"""
