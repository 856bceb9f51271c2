"""Self-consistent models and values (Farquhar et al., 2021, arXiv 2110.12840). See README.md."""
