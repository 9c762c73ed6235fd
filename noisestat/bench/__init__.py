"""Compression benchmarks: every (image, codec) pair coded and measured with rate-distortion metrics
(PSNR, SSIM, MS-SSIM, errors in units of the camera's noise); ``compress-bench``.
"""

from ._run import (CompressBench, compress_bench, format_bench, noise_sigma_dn, METRIC_COLUMNS,
                   AVERAGED_METRICS, QUANTISATION_VARIANCE_DN2)
from ._metrics import (compression_metrics, default_data_range, ms_ssim, ssim, MS_SSIM_WEIGHTS, SSIM_SETTINGS,
                       STANDARD_BIT_DEPTHS, SIGMA_METRICS)

__all__ = ["CompressBench", "compress_bench", "format_bench", "noise_sigma_dn", "METRIC_COLUMNS",
           "AVERAGED_METRICS", "QUANTISATION_VARIANCE_DN2", "compression_metrics", "default_data_range",
           "ms_ssim", "ssim", "MS_SSIM_WEIGHTS", "SSIM_SETTINGS", "STANDARD_BIT_DEPTHS", "SIGMA_METRICS"]
