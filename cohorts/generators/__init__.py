"""cohorts/generators."""
