"""cohorts/builtin."""
