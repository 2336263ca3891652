# Independent reference for analysis/estimators/cafs.py: CAFS pairwise scores (Berry et al., Amyotroph Lateral
# Scler Frontotemporal Degener 2013;14:162-8) and the Finkelstein-Schoenfeld permutation z-test (Stat Med
# 1999;18:1341-54), written as a plain double loop over patient pairs (no vectorisation, no shared code).
#
# Re-run from the repository root (R >= 4.0, package jsonlite):
#   Rscript tests/analysis/results/cafs_reference.R
# Writes, next to this script:
#   cafs_hand_scores.csv   the 6-patient example (horizon 12 and none) with its scores
#   cafs_aids_scores.csv   one row per patient of tests/data/aids_ddi_ddc_long.csv with scores (horizon 12, none)
#   cafs_reference.json    test summaries (T, V, z, p, mean scores, mean ranks) for each dataset and horizon
#
# Pairwise rules for patients i and j after truncating follow-up at the horizon H
# (t = min(time, H); died = event observed at time <= H):
#   both died:            earlier death loses; equal death times -> compare change
#   only one died (at s): the other wins if followed to >= s; if censored before s -> compare change
#   neither died:         compare change
#   change:               larger change wins; equal or missing -> tie (0)

suppressPackageStartupMessages(library(jsonlite))
args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(script)) dirname(normalizePath(script)) else "tests/analysis/results"
data_file <- file.path(out_dir, "..", "..", "data", "aids_ddi_ddc_long.csv")

compare_pair <- function(ti, di, ci, tj, dj, cj) {
  # +1 if i is better than j, -1 if worse, 0 if tied
  if (di && dj) {
    if (ti < tj) return(-1)
    if (ti > tj) return(1)
  } else if (di && !dj) {
    if (tj >= ti) return(-1)
  } else if (!di && dj) {
    if (ti >= tj) return(1)
  }
  if (is.na(ci) || is.na(cj) || ci == cj) return(0)
  if (ci > cj) 1 else -1
}

cafs_scores_loop <- function(time, event, change, horizon) {
  n <- length(time)
  t <- pmin(time, horizon)
  died <- event == 1 & time <= horizon
  u <- numeric(n)
  for (i in seq_len(n)) {
    for (j in seq_len(n)) {
      if (i != j) u[i] <- u[i] + compare_pair(t[i], died[i], change[i], t[j], died[j], change[j])
    }
  }
  u
}

fs_test <- function(u, treated) {
  n1 <- sum(treated); n0 <- sum(!treated); n <- n1 + n0
  T <- sum(u[treated])
  V <- n1 * n0 / (n * (n - 1)) * sum(u^2)
  z <- T / sqrt(V)
  r <- rank(u, ties.method = "average")
  list(n_control = n0, n_treated = n1, sum_score_treated = T, variance = V, z = z,
       p_value = 2 * pnorm(-abs(z)), estimate = mean(u[treated]) - mean(u[!treated]),
       se = sqrt(V) * n / (n1 * n0),
       mean_score_control = mean(u[!treated]), mean_score_treated = mean(u[treated]),
       mean_rank_control = mean(r[!treated]), mean_rank_treated = mean(r[treated]))
}

# --- the 6-patient example (checked by hand in tests/analysis/test_estimators_cafs.py) ---
hand <- data.frame(patient = 1:6,
                   time = c(3, 6, 4, 12, 16, 15),
                   event = c(1, 1, 0, 0, 0, 1),
                   change = c(-10, -2, -1, -5, -5, -3),
                   arm = c("control", "treated", "treated", "control", "control", "treated"))
hand$score_h12 <- cafs_scores_loop(hand$time, hand$event, hand$change, 12)
hand$score_none <- cafs_scores_loop(hand$time, hand$event, hand$change, Inf)

# --- ddI/ddC trial: one row per patient ---
long <- read.csv(data_file)
pids <- sort(unique(long$pid))
aids <- data.frame(pid = pids, time = NA_real_, event = NA_real_, change = NA_real_, arm = NA_character_)
for (k in seq_along(pids)) {
  rows <- long[long$pid == pids[k], ]
  rows <- rows[order(rows$time), ]
  aids$time[k] <- max(rows$time2)                      # death or last follow-up
  aids$event[k] <- as.numeric(any(rows$event == 1))
  aids$change[k] <- rows$num_CD4[nrow(rows)] - rows$num_CD4[rows$time == 0]
  aids$arm[k] <- as.character(rows$fac_drug[1])
}
aids$score_h12 <- cafs_scores_loop(aids$time, aids$event, aids$change, 12)
aids$score_none <- cafs_scores_loop(aids$time, aids$event, aids$change, Inf)

summ <- list(
  hand_h12 = fs_test(hand$score_h12, hand$arm == "treated"),
  hand_none = fs_test(hand$score_none, hand$arm == "treated"),
  aids_h12 = fs_test(aids$score_h12, aids$arm == "ddI"),
  aids_none = fs_test(aids$score_none, aids$arm == "ddI"),
  r_version = R.version.string)
write.csv(hand, file.path(out_dir, "cafs_hand_scores.csv"), row.names = FALSE)
write.csv(aids, file.path(out_dir, "cafs_aids_scores.csv"), row.names = FALSE)
writeLines(toJSON(summ, auto_unbox = TRUE, digits = NA, pretty = TRUE), file.path(out_dir, "cafs_reference.json"))
