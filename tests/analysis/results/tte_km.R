# Reference values for analysis/estimators/km.py: Kaplan-Meier median and its CI per arm from R survival,
# quantile(survfit(..., conf.type=...), 0.5) (quantile.survfit) and the print.survfit table (survmean).
# Re-run from the repository root:  Rscript tests/analysis/results/tte_km.R
# Output: tests/analysis/results/tte_km.csv (long format; NA = not reached)
source("tests/analysis/results/tte_common.R")
one <- function(dataset, formula, data, conf) {
  fit <- survfit(formula, data = data, conf.type = conf)
  q <- quantile(fit, 0.5)
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  groups <- if (is.null(fit$strata)) "all" else sub("^[^=]*=", "", names(fit$strata))
  for (i in seq_along(groups)) {
    label <- paste0(deparse(formula[[3]]), " conf.type=", conf)
    add(dataset, label, groups[i], "median", as.numeric(q$quantile)[i])
    add(dataset, label, groups[i], "ci_low", as.numeric(q$lower)[i])
    add(dataset, label, groups[i], "ci_high", as.numeric(q$upper)[i])
    add(dataset, label, groups[i], "print_median", tab[i, "median"])
    add(dataset, label, groups[i], "print_ci_low", tab[i, "0.95LCL"])
    add(dataset, label, groups[i], "print_ci_high", tab[i, "0.95UCL"])
    add(dataset, label, groups[i], "n", tab[i, "records"])
    add(dataset, label, groups[i], "events", tab[i, "events"])
  }
}
# hand-made: the curve equals 0.5 exactly (arm a: then drops at 3; arm b: stays at 0.5 to the last time 6)
toy <- data.frame(time = c(1, 2, 3, 4, 1, 2, 5, 6), event = c(1, 1, 1, 1, 1, 1, 0, 0),
                  arm = rep(c("a", "b"), each = 4))
for (conf in c("log-log", "log", "plain")) {
  one("toy", Surv(time, event) ~ arm, toy, conf)
  one("va_lung", Surv(time_days, death) ~ Treatment, va, conf)
  one("va_lung", Surv(time_days, death) ~ Celltype, va, conf)
  one("va_lung", Surv(time_days, death) ~ 1, va, conf)
  one("gbsg2", Surv(rfs_days, event) ~ horTh, gbsg, conf)
  one("gbsg2", Surv(rfs_days, event) ~ tgrade, gbsg, conf)
}
save_rows("tests/analysis/results/tte_km.csv")
