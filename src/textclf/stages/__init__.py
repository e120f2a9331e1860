"""DVC stage entry points: thin wrappers over the package's functions (`python -m textclf.stages.X`)."""
