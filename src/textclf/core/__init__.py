"""Core: the run's context (params, paths, names), the settings schema, atomic file writing, the device."""
