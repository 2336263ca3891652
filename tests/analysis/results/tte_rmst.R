# Reference values for analysis/estimators/rmst.py: restricted mean survival per arm from R survival,
# summary(survfit(...), rmean = tau)$table[, c("rmean", "se(rmean)")] (survmean; Greenwood-type se).
# Re-run from the repository root:  Rscript tests/analysis/results/tte_rmst.R
# Output: tests/analysis/results/tte_rmst.csv (long format: dataset, analysis, group, quantity, value)
source("tests/analysis/results/tte_common.R")
one <- function(dataset, formula, data, tau) {
  tab <- summary(survfit(formula, data = data), rmean = tau)$table
  groups <- sub("^[^=]*=", "", rownames(tab))
  label <- paste0(deparse(formula[[3]]), " tau=", tau)
  for (i in seq_along(groups)) {
    add(dataset, label, groups[i], "rmean", tab[i, "rmean"])
    add(dataset, label, groups[i], "se_rmean", tab[i, "se(rmean)"])
  }
}
for (tau in c(100, 365, 553)) one("va_lung", Surv(time_days, death) ~ Treatment, va, tau)
for (tau in c(365, 1000, 2000, 2563)) one("gbsg2", Surv(rfs_days, event) ~ horTh, gbsg, tau)
save_rows("tests/analysis/results/tte_rmst.csv")
