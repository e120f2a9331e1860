"""Report: the summary, model cards, plots and the staleness check over the run's outputs."""
