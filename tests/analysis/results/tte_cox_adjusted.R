# Reference values for analysis/estimators/cox_adjusted.py: R survival::coxph with covariates and strata().
# Re-run from the repository root:  Rscript tests/analysis/results/tte_cox_adjusted.R
# Output: tests/analysis/results/tte_cox_adjusted.csv (long format: dataset, analysis, group, quantity, value)
# Factors use R's default treatment contrasts (first sorted level = reference), as the Python dummy coding.
source("tests/analysis/results/tte_common.R")
one <- function(dataset, formula, data, ties) {
  f <- coxph(formula, data = data, ties = ties, control = coxph.control(eps = 1e-10, iter.max = 50))
  label <- paste0(deparse(formula[[3]]), " ties=", ties)
  for (nm in names(coef(f))) {
    add(dataset, label, nm, "coef", coef(f)[[nm]])
    add(dataset, label, nm, "se", sqrt(diag(vcov(f)))[[nm]])
  }
  add(dataset, label, "", "loglik", f$loglik[2])
}
for (ties in c("efron", "breslow")) {
  one("va_lung", Surv(time_days, death) ~ Treatment + Karnofsky_score + Celltype + strata(Prior_therapy), va, ties)
  one("gbsg2", Surv(rfs_days, event) ~ horTh + age + tsize + pnodes + strata(tgrade), gbsg, ties)
}
save_rows("tests/analysis/results/tte_cox_adjusted.csv")
