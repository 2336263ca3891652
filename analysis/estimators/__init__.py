"""analysis/estimators."""
