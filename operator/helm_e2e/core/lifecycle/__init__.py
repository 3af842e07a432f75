"""The life of one E2ERun (pure): what was observed in, typed actions out; re-runs, schedules, trust."""
