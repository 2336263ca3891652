# Reference values for tests/analysis/test_sample_size.py (analytic events / sample size / power).
#
# Re-run from the repository root (R >= 4.2 with rpact 3.3 and jsonlite; Debian: apt-get install r-cran-rpact):
#     Rscript tests/analysis/results/sample_size_rpact.R
# It writes tests/analysis/results/sample_size_rpact.json next to this script. R is needed only to regenerate
# the numbers; the tests read the stored JSON.
#
# rpact's allocationRatioPlanned is n_treated / n_control (group 1 = treated), as our allocation_ratio k.
#   events:  getSampleSizeSurvival(typeOfComputation = "Schoenfeld" | "Freedman")$eventsFixed (unrounded),
#            two-sided alpha, beta = 1 - power (the event count does not depend on lambda / accrual).
#   power:   getPowerSurvival(maxNumberOfEvents = d)$overallReject (two-sided).
#   means:   getSampleSizeMeans(normalApproximation = FALSE)$nFixed (total N of the two-sample t-test).
suppressPackageStartupMessages({library(rpact); library(jsonlite)})
args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script)) dirname(normalizePath(script)) else "tests/analysis/results"

events <- list()
for (method in c("Schoenfeld", "Freedman")) for (k in c(1, 2, 0.5)) for (hr in c(0.7, 0.5, 1.3))
  for (pw in c(0.8, 0.9)) for (alpha in c(0.05, 0.01)) {
    s <- getSampleSizeSurvival(sided = 2, alpha = alpha, beta = 1 - pw, hazardRatio = hr,
                               typeOfComputation = method, allocationRatioPlanned = k,
                               lambda2 = log(2) / 12, accrualTime = c(0, 12), followUpTime = 12)
    events[[length(events) + 1]] <- list(method = tolower(method), allocation_ratio = k, hazard_ratio = hr,
                                         power = pw, alpha = alpha, events = s$eventsFixed)
  }

power <- list()
for (method in c("Schoenfeld", "Freedman")) for (k in c(1, 2)) for (hr in c(0.7, 0.6)) for (d in c(80, 200)) {
  p <- suppressWarnings(getPowerSurvival(sided = 2, alpha = 0.05, hazardRatio = hr, typeOfComputation = method,
                                         allocationRatioPlanned = k, maxNumberOfEvents = d,
                                         maxNumberOfSubjects = 4 * d, lambda2 = log(2) / 12,
                                         accrualTime = c(0, 12)))
  power[[length(power) + 1]] <- list(method = tolower(method), allocation_ratio = k, hazard_ratio = hr,
                                     events = d, alpha = 0.05, power = p$overallReject)
}

means <- list()
for (k in c(1, 2)) for (delta in c(0.5, 0.3)) for (pw in c(0.8, 0.9)) {
  m <- getSampleSizeMeans(sided = 2, alpha = 0.05, beta = 1 - pw, alternative = delta, stDev = 1,
                          normalApproximation = FALSE, allocationRatioPlanned = k)
  means[[length(means) + 1]] <- list(allocation_ratio = k, mean_difference = delta, sd = 1, power = pw,
                                     alpha = 0.05, n_total = m$nFixed)
}

out <- list(generated_by = paste("tests/analysis/results/sample_size_rpact.R with rpact", packageVersion("rpact")),
            events = events, power = power, means = means)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out_dir, "sample_size_rpact.json"))
