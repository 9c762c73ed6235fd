"""The photon-transfer plot: variance against mean, the fit, its range, saturation, residuals."""

from __future__ import annotations

from .. import __version__

import os

import numpy as np

from ..io._files import atomic_file

__all__ = ["plot_photon_transfer"]


def plot_photon_transfer(ptc, path: str | os.PathLike, *, title: str = "Photon transfer") -> None:
    """Write a PNG of the photon transfer curve of ``ptc`` (a PhotonTransfer) to ``path``."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 6.5), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1))
    x, y = ptc.mu_net, ptc.s2_net
    used, out = ptc.fit_mask, ptc.excluded
    other = ~used & ~out
    top.plot(x[used], y[used], "o", color="C0", label="levels in the fit")
    top.plot(x[other], y[other], "o", mfc="none", color="C0", label="levels not fitted")
    if out.any():
        top.plot(x[out], y[out], "x", color="C3", label="saturated / above saturation")
    grid = np.linspace(0, x[~out].max() if (~out).any() else x.max(), 200)
    fitted = _model(ptc, grid)
    top.plot(grid, fitted, "-", color="C1",
             label=f"K = {ptc.gain_dn_per_e:.4g} ± {ptc.gain_se:.2g} DN/e-" + (" (slope at 0)" if ptc.nonlinear else ""))
    top.axvspan(0, x[used].max(), color="C0", alpha=0.07, label="fit range (≤ 70 % of saturation)")
    top.axvline(x[ptc.saturation_index], color="C3", ls="--", lw=1,
                label=f"saturation {ptc.saturation_dn:.0f} DN")
    if ptc.noise_map is not None:
        nm_x = np.asarray(ptc.noise_map["mean_dn"]) - np.mean(ptc.mu_dark)
        nm_y = np.asarray(ptc.noise_map["variance_dn2"]) - np.mean(ptc.s2_dark)
        top.plot(nm_x, nm_y, "-", color="C2", lw=1, label="noise map (non-linear camera)")
    top.set_ylabel("σ²_y − σ²_y.dark  (DN²)")
    top.set_title(f"{title}: offset {ptc.offset_dn:.2f} DN, dark noise {ptc.read_noise_dn:.3g} DN")
    top.legend(fontsize=8, loc="upper left")
    resid = y - _model(ptc, x)
    # Relative residuals of near-dark levels (net signal ~0, e.g. an EMVA "b 0 0.35" level) are noise
    # over almost nothing: left out of the residual panel, not of the fit.
    keep = ~out & (x > 0.001 * x[ptc.saturation_index])
    bottom.axhline(0, color="0.5", lw=1)
    bottom.plot(x[keep & used], 100 * resid[keep & used] / np.maximum(y[keep & used], 1e-9), "o", color="C0")
    bottom.plot(x[keep & ~used], 100 * resid[keep & ~used] / np.maximum(y[keep & ~used], 1e-9), "o", mfc="none",
                color="C0")
    bottom.set_ylabel("residual (%)")
    bottom.set_xlabel("μ_y − μ_y.dark  (DN)")
    with atomic_file(path) as handle:
        # the Software text chunk marks the file as noisestat's (noisestat.io._ownership)
        fig.savefig(handle, format="png", dpi=110, metadata={"Software": f"noisestat {__version__}"})


def _model(ptc, x):
    poly = ptc.extra.get("polynomial") if ptc.nonlinear else None
    if poly is not None:
        return sum(c * x ** (k + 1) for k, c in enumerate(poly))
    return ptc.gain_dn_per_e * x
