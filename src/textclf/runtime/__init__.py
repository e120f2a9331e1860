"""Model runtime: resolving weights (hub, package, path), tokens, sentence embedders, the batch engine."""
