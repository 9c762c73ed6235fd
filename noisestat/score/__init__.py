"""Scoring: eps = (chi_raw - chi_codec) / sigma_raw, sigma_raw and its resolution floor, the null
distribution of a second acquisition, the statistical tests and the verdict; per pixel for a value
predictor and for the image filters a classifier sees (operator-level eps; descriptive, no verdict).
"""

from ._eps import (angular_mask, deviation, replica_spread, resolution_floor, floored, GLOBAL_FLOOR, epsilon,
                   summarise_eps, null_reference)
from ._pixels import pixel_sigma, pixel_floor, pixel_eps, pixel_null, pixel_summary
from ._operators import (OPERATORS, OPERATOR_SIGMAS, OPERATOR_COLUMNS, OPERATOR_TILE, OperatorScore, operator_halo,
                         operator_responses, operator_sigma, operator_scores)
from ._criteria import (eps_scale, keep_for_spread, proportion_margin_test, clustered_margin_test, global_test,
                        object_shares)
from ._verdict import Margins, PRIMARY, Verdict, judge, parse_primary, rule_text
from ._null import UNSTABLE_FRACTION, band_counts, replica_pair_eps, second_acquisition_losses
from ._tests import (FAMILIES, TRIM, MARGIN, ALPHA, KEEP, location_tests, band_fraction, band_noninferiority,
                     loss_test, codec_statistics, difference_stats)

__all__ = ["angular_mask", "deviation", "replica_spread", "resolution_floor", "floored", "GLOBAL_FLOOR",
           "epsilon", "summarise_eps", "null_reference", "FAMILIES", "TRIM",
           "MARGIN", "ALPHA", "KEEP", "location_tests", "band_fraction", "band_noninferiority", "loss_test",
           "codec_statistics", "difference_stats", "pixel_sigma", "pixel_floor", "pixel_eps", "pixel_null",
           "pixel_summary", "OPERATORS", "OPERATOR_SIGMAS", "OPERATOR_COLUMNS", "OPERATOR_TILE", "OperatorScore",
           "operator_halo", "operator_responses", "operator_sigma", "operator_scores", "Margins", "PRIMARY", "Verdict", "eps_scale", "judge", "keep_for_spread",
           "proportion_margin_test", "clustered_margin_test", "global_test", "parse_primary", "rule_text",
           "object_shares", "UNSTABLE_FRACTION", "band_counts", "replica_pair_eps", "second_acquisition_losses"]
