"""One package per approach, each behind the `Approach` interface in `base.py`."""
