"""The model a command line names: a model file (:func:`load_predictor`: a forest or a label-free
network), or, with no model file, a user's tool (``--predictor-command``) or a Python callable
(``--predictor-python``), as a predictor of the protocol (:mod:`noisestat.predict._protocol`) and the
record of it for the provenance."""

from __future__ import annotations

from ..errors import InputError

__all__ = ["predictor_from_options", "load_predictor", "OUTPUTS"]

OUTPUTS = ("labels", "mask", "values")


def predictor_from_options(*, command: str | None = None, python: str | None = None, output: str = "labels",
                           timeout: float | None = None):
    """``(predictor, record)``: the predictor ``command`` (a template with ``{input}``/``{output}`` or
    ``{input_dir}``/``{output_dir}``) or ``python`` (``MODULE:FUNCTION`` or ``file.py:FUNCTION``) gives,
    answering ``output`` (labels, mask or values), and the provenance record of it (what was run,
    its version where it says, a hash). Exactly one of ``command`` and ``python``."""
    if (command is None) == (python is None):
        raise InputError("give exactly one of --predictor-command and --predictor-python")
    if output not in OUTPUTS:
        raise InputError(f"--predictor-output must be one of {', '.join(OUTPUTS)}; got {output!r}")
    if timeout is not None and not timeout > 0:
        raise InputError(f"--predictor-timeout must be a positive number of seconds; got {timeout}")
    if command is not None:
        from ._command import command_predictor

        return command_predictor(command, output=output, timeout=timeout)
    if timeout is not None:
        raise InputError("--predictor-timeout stops a --predictor-command's process; a --predictor-python function "
                         "runs inside noisestat and cannot be stopped that way: leave --predictor-timeout out")
    from ._callable import callable_predictor

    return callable_predictor(python, output=output)


def load_predictor(path):
    """The model in the file ``path``: a label-free network's checkpoint (a PyTorch file,
    :func:`noisestat.predict.load_labelfree`) or a forest's model file (:func:`noisestat.predict.load_model`).

    Which one is decided from the file's content (a torch archive, or a .pt/.pth/.ckpt file that is
    no archive, is a checkpoint), so a forest model file keeps loading whatever its name; each loader
    then refuses what it cannot read in one line naming the file. Only a checkpoint imports torch.
    """
    from ._forest import load_model
    from ._labelfree import is_labelfree_file, load_labelfree

    return load_labelfree(path) if is_labelfree_file(path) else load_model(path)
