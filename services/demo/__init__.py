"""`mtm-billing demo`: the whole mission on synthetic data, through the real API and worker."""
