# Reference values for analysis/estimators/logrank_stratified.py: R survival::survdiff with strata().
# Re-run from the repository root:  Rscript tests/analysis/results/tte_logrank_stratified.R
# Output: tests/analysis/results/tte_logrank_stratified.csv (long format: dataset, analysis, group, quantity, value)
source("tests/analysis/results/tte_common.R")
one <- function(dataset, formula, data, label) {
  f <- survdiff(formula, data = data)
  add(dataset, label, "", "chisq", f$chisq)
  add(dataset, label, "", "p_value", pchisq(f$chisq, 1, lower.tail = FALSE))
  # second level of the arm factor = treated (va: test, gbsg: yes); O - E and its variance
  obs <- if (is.matrix(f$obs)) rowSums(f$obs) else f$obs
  exp <- if (is.matrix(f$exp)) rowSums(f$exp) else f$exp
  add(dataset, label, "treated", "observed_minus_expected", obs[2] - exp[2])
  add(dataset, label, "treated", "variance", f$var[2, 2])
}
one("va_lung", Surv(time_days, death) ~ Treatment + strata(Celltype), va, "strata=Celltype")
one("va_lung", Surv(time_days, death) ~ Treatment + strata(Prior_therapy), va, "strata=Prior_therapy")
one("gbsg2", Surv(rfs_days, event) ~ horTh + strata(tgrade), gbsg, "strata=tgrade")
one("gbsg2", Surv(rfs_days, event) ~ horTh + strata(menostat, tgrade), gbsg, "strata=menostat:tgrade")
save_rows("tests/analysis/results/tte_logrank_stratified.csv")
