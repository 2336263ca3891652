# Shared helpers for the tte_*.R reference scripts (sourced by them; writes nothing itself).
# Data: the real trials under tests/data (read from the repository root).
suppressPackageStartupMessages(library(survival))
va <- read.csv("tests/data/va_lung.csv")
gbsg <- read.csv("tests/data/gbsg2.csv")
rows <- list()
add <- function(dataset, analysis, group, quantity, value) {
  rows[[length(rows) + 1]] <<- data.frame(dataset = dataset, analysis = analysis, group = group,
                                          quantity = quantity, value = sprintf("%.17g", value))
}
save_rows <- function(path) {
  out <- do.call(rbind, rows)
  con <- file(path, "w")
  writeLines(sprintf("# %s, survival %s; made by %s", R.version.string, packageVersion("survival"),
                     sub("\\.csv$", ".R", basename(path))), con)
  write.csv(out, con, row.names = FALSE, quote = FALSE)
  close(con)
}
