"""The filters of filtered back-projection, as frequency responses on the real FFT's bins.

The responses are those of scikit-image's ``iradon`` (0.19 and later), so that a slice
reconstructed here equals ``iradon(..., filter_name=name)``: the ramp is the Fourier transform of
the band-limited ramp's sampled impulse response (Kak and Slaney 1988, ch. 3, eq. 61: h[0] = 1/4,
h[n] = -1/(pi n)^2 for odd n, 0 for even n, taken circularly over the padded length), which has no
DC bias; the other filters multiply it by a window. ``iradon`` multiplies the full complex spectrum
of a real signal by a real response and keeps the real part; that equals filtering with the
response's even part ``(H[k] + H[-k]) / 2``, which is what the real FFT's bins carry here (the
Hamming and Hann windows, shifted by half the length, are not exactly even).
"""

from __future__ import annotations

import numpy as np

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def padded_length(width: int) -> int:
    """The FFT length of a projection ``width`` pixels wide: the power of two (at least 64) at or
    above twice the diagonal of the ``width`` x ``width`` slice, as ``iradon(circle=True)`` pads."""
    diagonal = int(np.ceil(np.sqrt(2) * width))
    return max(64, int(2 ** np.ceil(np.log2(2 * diagonal))))


def filter_response(size: int, name: str = "ramp") -> np.ndarray:
    """The filter's real, even response on the ``size // 2 + 1`` bins of a real FFT of length
    ``size`` (even), float64.

    Examples
    --------
    >>> h = filter_response(64, "ramp")
    >>> h.shape, round(float(h[0]), 4), round(float(h[-1]), 3)
    ((33,), 0.0063, 0.994)
    """
    if name not in FILTERS:
        raise ValueError(f"filter must be one of {', '.join(FILTERS)}; got {name!r}")
    k = np.arange(size)
    impulse = np.zeros(size)
    impulse[0] = 0.25
    odd = k % 2 == 1
    distance = np.minimum(k, size - k)[odd]  # circular distance from sample 0
    impulse[odd] = -1.0 / (np.pi * distance) ** 2
    response = 2.0 * np.fft.fft(impulse).real  # the ramp
    if name == "shepp-logan":
        omega = np.pi * np.fft.fftfreq(size)[1:]
        response[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        response *= np.fft.fftshift(np.sin(np.linspace(0.0, np.pi, size, endpoint=False)))
    elif name == "hamming":
        response *= np.fft.fftshift(np.hamming(size))
    elif name == "hann":
        response *= np.fft.fftshift(np.hanning(size))
    even = 0.5 * (response + np.roll(response[::-1], 1))
    return even[: size // 2 + 1]
