"""`make bench`: throughput, Redis cost, delivery, cold start and end-to-end latency, as ratios."""
