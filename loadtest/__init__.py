"""Load test of the review workspace: `make loadtest` (see loadtest/run.py)."""
