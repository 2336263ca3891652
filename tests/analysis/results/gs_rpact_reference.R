# Reference values for tests/analysis/test_group_sequential.py (group-sequential boundaries).
#
# Re-run from the repository root (R >= 4.2 with rpact 3.3 and jsonlite; Debian: apt-get install r-cran-rpact):
#     Rscript tests/analysis/results/gs_rpact_reference.R
# It writes tests/analysis/results/gs_rpact_reference.json next to this script. R is needed only to regenerate
# the numbers; the tests read the stored JSON.
#
# Every design is rpact::getDesignGroupSequential(..., tolerance = 1e-10) (bindingFutility = FALSE with beta
# spending; rpact warns that the argument is ignored without futility bounds) followed by
# rpact::getDesignCharacteristics(). Stored per design: the call's arguments, criticalValues (efficacy z per look),
# futilityBounds (z at the interim looks, beta-spending designs only), alphaSpent (cumulative), stageLevels
# (one-sided nominal p per look), betaSpent; and from getDesignCharacteristics: shift (= drift^2, the squared
# expected Z at full information giving power 1 - beta), nFixed ((z_{1-alpha/sided} + z_{1-beta})^2),
# inflationFactor (shift / nFixed), rejectionProbabilities and futilityProbabilities per look under that drift,
# averageSampleNumber1 / 01 / 0 (expected information relative to the fixed design under drift, drift / 2, 0).
suppressPackageStartupMessages({ library(rpact); library(jsonlite) })
args <- commandArgs(trailingOnly = FALSE)
here <- dirname(normalizePath(sub("^--file=", "", args[grep("^--file=", args)])))

designs <- list(
  obf_3 = list(kMax = 3, alpha = 0.025, beta = 0.2, sided = 1, typeOfDesign = "asOF"),
  pocock_3 = list(kMax = 3, alpha = 0.025, beta = 0.2, sided = 1, typeOfDesign = "asP"),
  hsd_m4_4 = list(kMax = 4, alpha = 0.025, beta = 0.2, sided = 1, typeOfDesign = "asHSD", gammaA = -4,
                  informationRates = c(0.2, 0.45, 0.7, 1)),
  hsd_1_4 = list(kMax = 4, alpha = 0.025, beta = 0.2, sided = 1, typeOfDesign = "asHSD", gammaA = 1,
                 informationRates = c(0.2, 0.45, 0.7, 1)),
  hsd_0_5 = list(kMax = 5, alpha = 0.025, beta = 0.1, sided = 1, typeOfDesign = "asHSD", gammaA = 0),
  obf_3_bsof = list(kMax = 3, alpha = 0.025, beta = 0.1, sided = 1, typeOfDesign = "asOF",
                    typeBetaSpending = "bsOF"),
  hsd_m2_4_bshsd = list(kMax = 4, alpha = 0.025, beta = 0.1, sided = 1, typeOfDesign = "asHSD", gammaA = -2,
                        typeBetaSpending = "bsHSD", gammaB = -2, informationRates = c(0.25, 0.5, 0.8, 1)),
  pocock_3_bsp = list(kMax = 3, alpha = 0.025, beta = 0.2, sided = 1, typeOfDesign = "asP",
                      typeBetaSpending = "bsP", informationRates = c(0.3, 0.6, 1)),
  obf_3_twosided = list(kMax = 3, alpha = 0.05, beta = 0.2, sided = 2, typeOfDesign = "asOF"),
  pocock_4_twosided = list(kMax = 4, alpha = 0.05, beta = 0.1, sided = 2, typeOfDesign = "asP",
                           informationRates = c(0.2, 0.5, 0.75, 1))
)

out <- list(rpact_version = as.character(packageVersion("rpact")), designs = list())
for (name in names(designs)) {
  a <- designs[[name]]
  extra <- if (is.null(a$typeBetaSpending)) list() else list(bindingFutility = FALSE)
  d <- do.call(getDesignGroupSequential, c(a, extra, list(tolerance = 1e-10)))
  ch <- getDesignCharacteristics(d)
  fut <- if (is.null(a$typeBetaSpending)) NULL else as.numeric(d$futilityBounds)
  out$designs[[name]] <- list(
    args = a, informationRates = d$informationRates, criticalValues = d$criticalValues,
    futilityBounds = fut, alphaSpent = d$alphaSpent, stageLevels = d$stageLevels,
    betaSpent = if (is.null(fut)) NULL else d$betaSpent,
    shift = ch$shift, nFixed = ch$nFixed, inflationFactor = ch$inflationFactor,
    rejectionProbabilities = ch$rejectionProbabilities,
    futilityProbabilities = if (is.null(fut)) NULL else ch$futilityProbabilities,
    averageSampleNumber1 = ch$averageSampleNumber1, averageSampleNumber01 = ch$averageSampleNumber01,
    averageSampleNumber0 = ch$averageSampleNumber0)
}
writeLines(toJSON(out, digits = I(15), auto_unbox = TRUE, pretty = TRUE, null = "null"),
           file.path(here, "gs_rpact_reference.json"))
