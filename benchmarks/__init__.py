"""`make bench`: ops-session's per-request cost, side by side with its peers."""
