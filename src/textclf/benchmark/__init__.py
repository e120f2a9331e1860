"""The benchmark: every approach on several datasets (run.py), its leaderboard (leaderboard.py), the CI guard."""
