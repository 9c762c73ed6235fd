"""The exceptions noisestat raises on bad input or impossible requests.

Every message names the thing, the constraint and the value, so that the command-line
interface can print it on one line and exit with status 1.
"""


class NoisestatError(Exception):
    """Base class of every error noisestat raises on purpose."""


class InputError(NoisestatError):
    """An input file or array is missing, unreadable or of the wrong kind."""


class ProfileError(NoisestatError):
    """A camera profile is missing a key or holds an impossible value."""


class CodecError(NoisestatError):
    """A codec spec is malformed, or a codec cannot do what was asked."""


class ModelError(NoisestatError):
    """A pixel classifier cannot be trained, saved, loaded or used."""


class OutputError(NoisestatError):
    """An output cannot be written where it was asked: the place is unsafe (it holds inputs or
    someone else's files), a file or folder is in the way, or the system refused the write."""


class ProfileFitError(ProfileError, InputError):
    """A camera profile cannot describe this image (values beyond its digitiser, or an image lying
    below its offset): a fault of the pair, so both a ProfileError and an InputError."""
