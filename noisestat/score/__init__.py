"""Scoring: eps = (chi_raw - chi_codec) / sigma_raw, sigma_raw and its resolution floor, the null
distribution of a second acquisition, the statistical tests and the verdict (of one image, and pooled over
the fields of a dataset); per pixel for a value
predictor and for the image filters a classifier sees (operator-level eps; descriptive, no verdict).

A whole volume's globals estimated from a random sample of its tiles (``--sample``).
"""

from ._eps import (angular_mask, deviation, replica_spread, resolution_floor, floored, GLOBAL_FLOOR, global_floors,
                   epsilon,
                   summarise_eps, null_reference)
from ._pixels import pixel_sigma, pixel_floor, pixel_eps, pixel_null, pixel_summary
from ._operators import (OPERATORS, OPERATOR_SIGMAS, OPERATOR_COLUMNS, OPERATOR_TILE, OperatorScore, operator_halo,
                         operator_responses, operator_sigma, operator_scores)
from ._criteria import (eps_scale, keep_for_spread, proportion_margin_test, clustered_margin_test, global_test,
                        object_shares)
from ._verdict import Margins, PRIMARY, VOLUME_PRIMARY, Verdict, default_primary, judge, parse_primary, rule_text
from ._sampling import (SampledEstimate, sample_tiles, objects_in_core, objects_inside, tile_of_objects,
                        whole_weights, tile_totals, extrapolate_global, extrapolate_ratio)
from ._null import UNSTABLE_FRACTION, band_counts, replica_pair_eps, second_acquisition_losses
from ._dataset import MIN_FIELDS, field_counts, judge_dataset, pooled_criterion, pooled_shift
from ._tests import (FAMILIES, TRIM, MARGIN, ALPHA, KEEP, location_tests, band_fraction, band_noninferiority,
                     loss_test, codec_statistics, difference_stats)

__all__ = ["angular_mask", "deviation", "replica_spread", "resolution_floor", "floored", "GLOBAL_FLOOR", "global_floors",
           "epsilon", "summarise_eps", "null_reference", "FAMILIES", "TRIM",
           "MARGIN", "ALPHA", "KEEP", "location_tests", "band_fraction", "band_noninferiority", "loss_test",
           "codec_statistics", "difference_stats", "pixel_sigma", "pixel_floor", "pixel_eps", "pixel_null",
           "pixel_summary", "OPERATORS", "OPERATOR_SIGMAS", "OPERATOR_COLUMNS", "OPERATOR_TILE", "OperatorScore",
           "operator_halo", "operator_responses", "operator_sigma", "operator_scores", "Margins", "PRIMARY", "VOLUME_PRIMARY", "default_primary", "Verdict", "eps_scale", "judge", "keep_for_spread",
           "proportion_margin_test", "clustered_margin_test", "global_test", "parse_primary", "rule_text",
           "object_shares", "UNSTABLE_FRACTION", "band_counts", "replica_pair_eps", "second_acquisition_losses",
           "SampledEstimate", "sample_tiles", "objects_in_core", "objects_inside", "tile_of_objects", "whole_weights",
           "tile_totals", "extrapolate_global", "extrapolate_ratio", "MIN_FIELDS", "pooled_shift", "pooled_criterion",
           "field_counts", "judge_dataset"]
