"""The learned codec: a CompressAI model from a checkpoint on disk, real entropy-coded bitstream.

torch and compressai are imported only when the codec is used (see :mod:`noisestat.codecs`),
so the codec is listed, and its spec parsed, without them.
"""

from __future__ import annotations

import os

from ..errors import CodecError
from ._base import Codec, CodecKey, register
# The architecture table is the models' own (ARCHS); importing it needs neither torch nor compressai.
from ._compressai import ARCHS


@register
class CompressAI(Codec):
    name = "compressai"
    summary = ("learned codec (CompressAI) from a checkpoint file: one trained by `noisestat codec-train` "
               "(1 channel) or an official CompressAI checkpoint (grey replicated to 3 channels); the image's "
               "min..max is mapped to [0, 1]; the ratio counts the real bitstream, header and min/max")
    keys = (CodecKey("arch", str, "architecture; needed for official CompressAI checkpoints, checked for ours",
                     choices=ARCHS),
            CodecKey("checkpoint", str, "checkpoint file (loaded weights-only; nothing is downloaded)"))
    extra = "learned"

    def __init__(self, spec: str, **params):
        self._loaded = None
        super().__init__(spec, **params)

    def check(self):
        path = self.params["checkpoint"]
        if not path:
            raise CodecError("codec compressai: needs checkpoint=FILE (from `noisestat codec-train` or CompressAI)")
        if not os.path.isfile(path):
            raise CodecError(f"codec compressai: checkpoint={path}: no such file")

    def __getstate__(self):
        # Workers load the model themselves: a pickled model would be large and tied to this process.
        state = self.__dict__.copy()
        state["_loaded"] = None
        return state

    def _model(self):
        if self._loaded is None:
            from ._compressai import load_checkpoint

            self._loaded = load_checkpoint(self.params["checkpoint"], self.params["arch"])
        return self._loaded

    def prepare(self, image, profile):
        super().prepare(image, profile)
        self._model()  # a missing extra or a bad checkpoint fails here, before any long computation

    def apply(self, image, profile):
        from ._compressai import decode, encode

        loaded = self._model()
        stream, info = encode(loaded, image)
        decoded = decode(loaded, stream)
        return self.result(image, decoded, len(stream), **info)
