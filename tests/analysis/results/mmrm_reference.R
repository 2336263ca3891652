# Reference values for tests/analysis/test_estimators_mmrm.py (MMRM and random-slope models).
#
# Re-run from the repository root (R >= 4.2 with nlme, emmeans, numDeriv, lme4, lmerTest, jsonlite):
#     Rscript tests/analysis/results/mmrm_reference.R
# It reads tests/data/beat_the_blues.csv and tests/data/aids_ddi_ddc_long.csv and writes
# tests/analysis/results/mmrm_reference.json next to this script. R is needed only to regenerate the numbers.
#
# MMRM: nlme::gls(change ~ visit * treated + visit * baseline, correlation = corSymm(form = ~ k | id),
#   weights = varIdent(form = ~ 1 | visit), method = "REML") on the post-baseline visits (k = visit index),
#   i.e. an unstructured covariance; then emmeans(fit, ~ treated | visit, mode = "satterthwaite") and the
#   treated - control contrast at every visit. glsControl(natural = FALSE) keeps nlme's apVar (inverse numerical
#   Hessian of the REML log-likelihood) in the same parameterisation as coef(modelStruct), so emmeans uses its
#   "satterthwaite" mode (numDeriv jacobian of vcov(beta)) rather than falling back to "appx-satterthwaite".
#   nlme's apVar comes from fdHess (a coarse finite-difference Hessian), which moves the emmeans df by a few
#   per cent (63.1 with opt = "nlminb", 69.0 with opt = "optim" on Beat the Blues); so the script also stores
#   df_numderiv: the same emmeans formula 2 v^2 / (g' A g), g from emmeans:::gls_grad, but with A the inverse of
#   numDeriv::hessian (Richardson extrapolation) of nlme's own REML log-likelihood (glsApVar.fullGlsLogLik).
#   half_logdet_xtx = log|X'X| / 2 for R's fixed-effects design (nlme's REML logLik omits this term).
# Random slope: nlme::lme(value ~ time + time:treated, random = ~ time | id, method = "REML") and the same
#   model in lmerTest::lmer(REML = TRUE) for Satterthwaite df of the time:treated coefficient.
suppressPackageStartupMessages({
  library(nlme); library(emmeans); library(lme4); library(lmerTest); library(jsonlite)
})
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))
root <- normalizePath(file.path(here, "..", "..", ".."))
data_dir <- file.path(root, "tests", "data")

# ---- long data: id, time, value, treated (0/1) --------------------------------------------------------
btb <- read.csv(file.path(data_dir, "beat_the_blues.csv"), check.names = FALSE)
cols <- c("bdi.pre", "bdi.2m", "bdi.4m", "bdi.6m", "bdi.8m")
btb_long <- do.call(rbind, lapply(seq_along(cols), function(j) data.frame(
  id = btb$patient_id, time = c(0, 2, 4, 6, 8)[j], value = btb[[cols[j]]],
  treated = as.integer(btb$treatment == "BtheB"))))
aids <- read.csv(file.path(data_dir, "aids_ddi_ddc_long.csv"))
aids_long <- data.frame(id = aids$pid, time = aids$time, value = aids$num_CD4,
                        treated = as.integer(aids$fac_drug == "ddI"))
datasets <- list(beat_the_blues = btb_long, aids = aids_long)

tight_gls <- glsControl(natural = FALSE, opt = "optim", tolerance = 1e-12, msTol = 1e-14, msMaxIter = 10000,
                        maxIter = 10000, returnObject = TRUE)
tight_lme <- lmeControl(tolerance = 1e-10, msTol = 1e-12, msMaxIter = 1000, maxIter = 1000, niterEM = 100,
                        returnObject = TRUE)

mmrm_ref <- function(long) {
  long <- long[order(long$id, long$time), ]
  times <- sort(unique(long$time))
  base <- long[long$time == times[1], c("id", "value")]
  names(base)[2] <- "baseline"
  post <- merge(long[long$time > times[1] & !is.na(long$value), ], base, by = "id")
  post <- post[!is.na(post$baseline), ]
  post$change <- post$value - post$baseline
  post$visit <- factor(post$time, levels = times[-1])
  post$k <- as.integer(post$visit)
  post$treated <- factor(post$treated, levels = c(0, 1))
  post <- post[order(post$id, post$k), ]
  assign("post", post, envir = globalenv())   # emmeans re-evaluates the data argument of the call
  fit <- gls(change ~ visit * treated + visit * baseline, data = post,
             correlation = corSymm(form = ~ k | id), weights = varIdent(form = ~ 1 | visit),
             method = "REML", control = tight_gls)
  emm <- emmeans(fit, ~ treated | visit, mode = "satterthwaite", data = post)
  con <- summary(contrast(emm, "revpairwise"), infer = c(TRUE, TRUE))
  # Satterthwaite df with an accurate Hessian (numDeriv) in place of nlme's fdHess apVar
  glsSt <- fit$modelStruct
  attr(glsSt, "conLin") <- NULL
  conLin <- list(Xy = cbind(model.matrix(fit, data = post), post$change), dims = fit$dims, logLik = 0)
  pars <- c(coef(glsSt), lSigma = log(fit$sigma))
  reml <- function(x) nlme:::glsApVar.fullGlsLogLik(x, glsSt, conLin, fit$dims, fit$dims$N - fit$dims$p)
  A <- solve(-numDeriv::hessian(reml, pars))
  V <- vcov(fit)
  G <- emmeans:::gls_grad(fit, fit$call, post, V)
  L <- contrast(emm, "revpairwise")@linfct
  df_nd <- apply(L, 1, function(l) {
    g <- sapply(G, function(M) drop(t(l) %*% M %*% l))
    2 * drop(t(l) %*% V %*% l)^2 / drop(t(g) %*% A %*% g)
  })
  X <- model.matrix(fit, data = post)
  full <- names(which.max(table(post$id)))
  vc <- getVarCov(fit, individual = full)
  sig <- matrix(as.numeric(vc), nrow(vc))
  list(visits = times[-1], estimate = con$estimate, se = con$SE, df = con$df, p_value = con$p.value,
       ci_low = con$lower.CL, ci_high = con$upper.CL, df_numderiv = unname(df_nd),
       loglik = as.numeric(logLik(fit)), half_logdet_xtx = 0.5 * as.numeric(determinant(crossprod(X))$modulus),
       sigma = sig,
       n_patients = length(unique(post$id)), n_obs = nrow(post),
       n_control = length(unique(post$id[post$treated == 0])),
       n_treated = length(unique(post$id[post$treated == 1])))
}

slope_ref <- function(long) {
  long <- long[!is.na(long$value), ]
  fit <- lme(value ~ time + time:treated, random = ~ time | id, data = long, method = "REML",
             control = tight_lme)
  tt <- summary(fit)$tTable
  vc <- getVarCov(fit)
  g <- matrix(as.numeric(vc), nrow(vc))
  lm4 <- lmerTest::lmer(value ~ time + time:treated + (time | id), data = long, REML = TRUE,
                        control = lmerControl(optimizer = "bobyqa",
                                              optCtrl = list(rhobeg = 0.1, rhoend = 1e-12, maxfun = 1e6)))
  st <- summary(lm4, ddf = "Satterthwaite")$coefficients
  list(fe_params = unname(tt[, "Value"]), bse = unname(tt[, "Std.Error"]), nlme_df = unname(tt[, "DF"]),
       loglik = as.numeric(logLik(fit)),
       half_logdet_xtx = 0.5 * as.numeric(determinant(crossprod(model.matrix(~ time + time:treated, long)))$modulus),
       G = g, sigma2 = fit$sigma^2,
       lmer_estimate = unname(st[, "Estimate"]), lmer_se = unname(st[, "Std. Error"]),
       lmer_satterthwaite_df = unname(st[, "df"]), lmer_p_value = unname(st[, "Pr(>|t|)"]),
       lmer_loglik = as.numeric(logLik(lm4)))
}

out <- list(
  generated_by = "tests/analysis/results/mmrm_reference.R",
  r_version = R.version.string,
  packages = sapply(c("nlme", "emmeans", "lme4", "lmerTest", "numDeriv"),
                    function(p) as.character(packageVersion(p)), simplify = FALSE),
  mmrm = lapply(datasets, mmrm_ref),
  random_slope = lapply(datasets, slope_ref))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), file.path(here, "mmrm_reference.json"))
