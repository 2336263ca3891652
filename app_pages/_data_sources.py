"""The Data page's source choices (shared with the scenario restore, which sets them)."""

BUILTIN = "Built-in reference cohort"
UPLOAD = "Upload a file"
SOURCES = (BUILTIN, UPLOAD)
