"""A user's tool as a predictor (``--predictor-command``): any program that reads an image from a
TIFF file and writes its labels, mask or values to another, run on every image noisestat segments.

The template is split once, as a POSIX shell would split it (:func:`shlex.split`), and run without
a shell. Its placeholders name TIFF files in a private temporary folder:

* ``{input}`` and ``{output}``: one call per image;
* ``{input_dir}`` and ``{output_dir}``: one call per batch of images, written ``in_0000.tif``,
  ``in_0001.tif``, ... into the input folder; the tool writes the same names into the output folder.
  The reference's images then go in as one batch per worker (:meth:`CommandBatchPredictor.segment_batch`),
  so a tool that loads a large model loads it a few times, not once per image.

The input files carry the pixel or voxel size when it is known (:attr:`CommandPredictor.pixel_size`,
set from the raw image's file), as ImageJ hyperstacks do (:mod:`noisestat.io._hyperstacks`). The
temporary folder is removed after each call, whether it succeeded, failed, ran past the timeout
(its whole process group is killed) or was interrupted.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess

import numpy as np
import tifffile

from ..errors import InputError, ModelError, OutputError
from ..io._atomic import scratch_directory
from ..io._hashing import file_sha256
from ..io._hyperstacks import _imagej_arguments, _size_dict

__all__ = ["command_predictor", "CommandPredictor", "CommandLabelPredictor", "CommandBatchPredictor",
           "CommandValuePredictor", "parse_template", "command_fingerprint"]

SINGLE_PLACEHOLDERS = ("{input}", "{output}")
BATCH_PLACEHOLDERS = ("{input_dir}", "{output_dir}")
#: Executables that run a script named by their first argument: the script is hashed, and they are
#: not asked for ``--version`` (their version is not the tool's).
INTERPRETER = re.compile(r"^(python[0-9.]*|pythonw|pypy[0-9.]*|bash|sh|dash|zsh|perl|ruby|node|Rscript|julia)"
                         r"(\.exe)?$")
#: Seconds ``<executable> --version`` may take before it is given up.
VERSION_TIMEOUT_S = 5.0
#: ImageJ's hyperstacks hold these sample types; other types go in a plain TIFF (no ImageJ unit).
IMAGEJ_TYPES = (np.uint8, np.uint16, np.float32)


def parse_template(template: str) -> tuple[list[str], str]:
    """The template's words (:func:`shlex.split`) and its form, ``"single"`` (``{input}`` and
    ``{output}``) or ``"batch"`` (``{input_dir}`` and ``{output_dir}``); an InputError for an empty
    command, unbalanced quotes, a missing placeholder or the two forms mixed."""
    try:
        words = shlex.split(template or "")
    except ValueError as exc:
        raise InputError(f"--predictor-command {template!r} cannot be split into words: {exc}") from None
    if not words:
        raise InputError("--predictor-command is empty: give the tool to run, e.g. "
                         "'mytool --in {input} --out {output}'")
    text = " ".join(words)
    single = [p for p in SINGLE_PLACEHOLDERS if p in text]
    batch = [p for p in BATCH_PLACEHOLDERS if p in text]
    if single and batch:
        raise InputError(f"--predictor-command mixes {' and '.join(single)} (one image a call) with "
                         f"{' and '.join(batch)} (a batch a call): use {{input}} and {{output}}, or "
                         f"{{input_dir}} and {{output_dir}}; got {template!r}")
    for form, found, pair in (("single", single, SINGLE_PLACEHOLDERS), ("batch", batch, BATCH_PLACEHOLDERS)):
        if found and len(found) < 2:
            missing = next(p for p in pair if p not in found)
            raise InputError(f"--predictor-command has {found[0]} but no {missing}: the tool must be told where "
                             f"to read and where to write; got {template!r}")
        if found:
            if any(p in words[0] for p in (*SINGLE_PLACEHOLDERS, *BATCH_PLACEHOLDERS)):
                raise InputError(f"--predictor-command must start with the tool to run, not a placeholder; "
                                 f"got {template!r}")
            return words, form
    raise InputError(f"--predictor-command needs {{input}} and {{output}} (one image a call) or {{input_dir}} and "
                     f"{{output_dir}} (a batch a call), where noisestat puts the image and finds the result; "
                     f"got {template!r}")


def _script(words: list[str]) -> str | None:
    """The script file an interpreter runs: its first argument that is not an option, when that is a
    file (None for ``-m module``, ``-c code`` and the like)."""
    for word in words[1:]:
        if word in ("-m", "-c", "-e", "-E"):
            return None
        if word.startswith("-"):
            continue
        return os.path.abspath(word) if os.path.isfile(word) else None
    return None


def command_fingerprint(template: str) -> dict:
    """What a command's results depend on besides its inputs, without running it: the SHA-256 of its
    executable and of the script an interpreter runs (None where a file is not found). A dataset's
    record of a field (:mod:`noisestat.dataset`): an edited tool makes its fields run again."""
    words, _ = parse_template(template)
    found = shutil.which(words[0])
    executable = os.path.abspath(found) if found else None
    script = _script(words) if executable and INTERPRETER.match(os.path.basename(executable)) else None
    return {"executable_sha256": file_sha256(executable) if executable else None,
            "script_sha256": file_sha256(script) if script else None}


def _version(executable: str) -> str | None:
    """The first line ``<executable> --version`` says, or None (it failed, timed out or said nothing)."""
    try:
        done = subprocess.run([executable, "--version"], stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=VERSION_TIMEOUT_S, start_new_session=True)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    for stream in (done.stdout, done.stderr):
        for line in stream.decode("utf-8", "replace").splitlines():
            if line.strip():
                return line.strip()[:200]
    return None


def command_predictor(template: str, *, output: str = "labels", timeout: float | None = None):
    """``(predictor, record)`` for ``--predictor-command template``: the predictor (a
    :class:`~noisestat.predict.LabelPredictor` for ``output`` labels or mask, with ``segment_batch``
    for a batch template; a whole-image :class:`~noisestat.predict.ValuePredictor` for values) and
    the provenance record: the template, the executable's path and SHA-256 (and the script's, when
    the executable is an interpreter given a script file), the tool's version where ``--version``
    says it. ``timeout``: seconds a call may run before its process group is killed (None: no limit).
    A template that cannot be run is refused here, before any work, with an InputError."""
    words, form = parse_template(template)
    if output not in ("labels", "mask", "values"):
        raise InputError(f"--predictor-output must be one of labels, mask, values; got {output!r}")
    if timeout is not None and not timeout > 0:
        raise InputError(f"--predictor-timeout must be a positive number of seconds; got {timeout}")
    found = shutil.which(words[0])
    if found is None:
        where = "no such executable file" if os.sep in words[0] else "not found on PATH"
        raise InputError(f"--predictor-command: {words[0]!r}: {where}")
    executable = os.path.abspath(found)
    interpreter = INTERPRETER.match(os.path.basename(executable)) is not None
    script = _script(words) if interpreter else None
    executable_sha256 = file_sha256(executable)
    script_sha256 = file_sha256(script) if script else None
    # path and sha256: the file that is the tool (its script, or the executable), as every input has
    record = {"command": template, "form": form, "output": output, "timeout_s": timeout,
              "path": script or executable, "sha256": script_sha256 or executable_sha256,
              "executable": executable, "executable_sha256": executable_sha256,
              "script": script, "script_sha256": script_sha256,
              "version": None if interpreter else _version(executable)}
    argv = [executable, *words[1:]]
    if output == "values":
        cls = CommandValuePredictor
    else:
        cls = CommandBatchPredictor if form == "batch" else CommandLabelPredictor
    predictor = cls(argv, form=form, output=output, timeout=timeout, record=record)
    return predictor, predictor.describe()


class CommandPredictor:
    """A tool run on whole images (the shared part of the command predictors). ``argv``: the
    template's words, the executable resolved; ``form``: ``"single"`` or ``"batch"``; ``output``:
    what the tool writes (labels, mask or values); ``pixel_size``: written into the input TIFFs
    (a :class:`~noisestat.io.PixelSize` or its dict; None when unknown)."""

    def __init__(self, argv, *, form: str, output: str, timeout: float | None, record: dict):
        self.argv = list(argv)
        self.form = form
        self.output = output
        self.timeout = timeout
        self.record = dict(record)
        self.pixel_size = None
        # what messages call it: the program, as the template names it
        self.shown = f"the predictor command {os.path.basename(self.argv[0])}"

    def describe(self) -> dict:
        return dict(self.record)

    def run(self, images) -> list[np.ndarray]:
        """The tool's checked outputs for ``images`` (all of the same shape), in order: one call
        per image in the single form, one call for them all in the batch form. A ModelError names
        the failing image's position (``index`` attribute) where one image alone is at fault."""
        if self.form == "single":
            out = []
            for k, image in enumerate(images):
                try:
                    out.extend(self._call([image]))
                except ModelError as exc:
                    exc.index = k
                    raise
            return out
        return self._call(list(images))

    def _call(self, images) -> list[np.ndarray]:
        with scratch_directory("noisestat-predictor-") as folder:
            if self.form == "single":
                inputs = [os.path.join(folder, "input.tif")]
                outputs = [os.path.join(folder, "output.tif")]
                names = {"{input}": inputs[0], "{output}": outputs[0]}
            else:
                in_dir, out_dir = os.path.join(folder, "in"), os.path.join(folder, "out")
                os.mkdir(in_dir)
                os.mkdir(out_dir)
                inputs = [os.path.join(in_dir, f"in_{k:04d}.tif") for k in range(len(images))]
                outputs = [os.path.join(out_dir, f"in_{k:04d}.tif") for k in range(len(images))]
                names = {"{input_dir}": in_dir, "{output_dir}": out_dir}
            for path, image in zip(inputs, images):
                self._write(path, np.asarray(image))
            argv = [self._fill(w, names) for w in self.argv]
            last = self._execute(argv, len(images), os.path.join(folder, "stderr.txt"))
            results = []
            for k, (path, image) in enumerate(zip(outputs, images)):
                try:
                    results.append(self._read(path, np.shape(image), last))
                except ModelError as exc:
                    if self.form == "batch":
                        exc.index = k
                    raise
            return results

    @staticmethod
    def _fill(word: str, names: dict) -> str:
        for key, value in names.items():
            word = word.replace(key, value)
        return word

    def _write(self, path: str, image: np.ndarray) -> None:
        size = _size_dict(self.pixel_size)
        if image.dtype in [np.dtype(t) for t in IMAGEJ_TYPES]:
            arguments = _imagej_arguments(image.ndim, size)
        else:
            arguments = {"resolution": (1.0 / size["x"], 1.0 / size["y"])} if size is not None else {}
        try:
            tifffile.imwrite(path, image, **arguments)
        except OSError as exc:  # a full or read-only temporary place: one line, the scratch folder goes
            raise OutputError(f"{path}: cannot write the predictor command's input: "
                              f"{exc.strerror or exc}") from None

    def _execute(self, argv: list[str], n_images: int, err_path: str) -> str:
        """Run the tool; its last non-empty stderr line. A ModelError if it cannot start, exits with
        a status other than 0 or runs past the timeout (its process group killed).

        Its stderr goes to a file and its stdout nowhere, and noisestat waits for the tool's own process
        only: a background process the tool leaves running (holding pipes open) cannot keep the run
        waiting, and is stopped with the tool's process group once the tool has exited."""
        what = "the image" if n_images == 1 else f"a batch of {n_images} images"
        with open(err_path, "wb") as err_file:
            try:
                process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=err_file, start_new_session=True)
            except OSError as exc:
                raise ModelError(f"the predictor command {argv[0]} cannot be started: {exc.strerror or exc}") from None
            try:
                process.wait(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill(process)
                process.wait()
                last = _last_line(_tail(err_path))
                raise ModelError(f"the predictor command ran past --predictor-timeout {self.timeout:g} s on {what} "
                                 f"and was stopped" + (f": {last}" if last else "")) from None
            except BaseException:  # an interrupt: the tool goes with the run
                _kill(process)
                process.wait()
                raise
            _kill(process)  # what the tool left running in its process group
        last = _last_line(_tail(err_path))
        if process.returncode != 0:
            status = (f"was killed by signal {-process.returncode}" if process.returncode < 0
                      else f"exited with status {process.returncode}")
            raise ModelError(f"the predictor command {status} on {what}: {last or '(nothing on stderr)'}")
        return last

    def _read(self, path: str, shape: tuple, last: str) -> np.ndarray:
        """The output file ``path``, checked against the image's ``shape`` and the output kind; a
        ModelError ending with the tool's ``last`` line on stderr otherwise."""
        name = os.path.basename(path)

        def refuse(problem: str):
            said = f"; its last line on stderr: {last}" if last else ""
            return ModelError(f"the predictor command's {problem}{said}")

        if not os.path.isfile(path):
            raise refuse(f"output {name} is missing (the tool exited with status 0 but wrote no {name})")
        try:
            data = np.asarray(tifffile.imread(path))
        except Exception as exc:  # noqa: BLE001 - any decoding failure is the tool's output's fault
            text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            raise refuse(f"{name} is not a readable TIFF ({text})") from None
        if data.shape != tuple(shape) and np.squeeze(data).shape == tuple(shape):
            data = np.squeeze(data)  # axes of length 1 (an ImageJ hyperstack's channel or time)
        if data.shape != tuple(shape):
            raise refuse(f"{name} has shape {data.shape}; the image has {tuple(shape)}")
        integer = np.issubdtype(data.dtype, np.integer)
        if self.output == "labels" and not integer:
            raise refuse(f"{name} holds {data.dtype} values; --predictor-output labels needs integer ids "
                         f"(0 background; a mask is --predictor-output mask)")
        if self.output == "labels" and data.size and data.min() < 0:
            raise refuse(f"{name} holds negative label ids (min {data.min()})")
        if self.output == "mask" and not (data.dtype == bool or integer):
            raise refuse(f"{name} holds {data.dtype} values; --predictor-output mask needs a boolean or integer "
                         f"mask (0 background, anything else foreground)")
        if self.output == "values" and (data.dtype == bool or not (integer or np.issubdtype(data.dtype, np.floating))):
            raise refuse(f"{name} holds {data.dtype} values; --predictor-output values needs real numbers")
        return data


class CommandLabelPredictor(CommandPredictor):
    """A tool that writes labels, or a mask noisestat labels itself (fully connected components, as
    it labels a mask predictor's mask: :func:`noisestat.engine._tiles.label_mask`): a
    :class:`~noisestat.predict.LabelPredictor`, one call per image."""

    def segment(self, image: np.ndarray) -> np.ndarray:
        return self._labels(self.run([image])[0])

    def _labels(self, data: np.ndarray) -> np.ndarray:
        if self.output == "mask":
            from ..engine._tiles import label_mask

            return label_mask(data != 0)
        return data


class CommandBatchPredictor(CommandLabelPredictor):
    """:class:`CommandLabelPredictor` of a batch template: ``segment_batch(images)`` runs the tool
    once for all of ``images``; ``segment(image)`` once for one."""

    def segment_batch(self, images) -> list[np.ndarray]:
        return [self._labels(d) for d in self.run(list(images))]


class CommandValuePredictor(CommandPredictor):
    """A tool that writes a value per pixel: a :class:`~noisestat.predict.ValuePredictor` that sees
    the whole image at once (``whole_image``; no halo)."""

    whole_image = True

    def halo(self, ndim: int) -> tuple[int, ...]:
        return (0,) * ndim

    def predict_values(self, region: np.ndarray) -> np.ndarray:
        return self.run([region])[0]


def _kill(process: subprocess.Popen) -> None:
    """Kill the tool and everything it started (its own process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    except OSError:
        process.kill()


def _tail(path: str, size: int = 65536) -> bytes:
    """The last ``size`` bytes of a file (a tool's stderr may be long)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - size))
            return handle.read()
    except OSError:
        return b""


def _last_line(err: bytes | None) -> str:
    """The last non-empty line of a tool's stderr, stripped and cut to 300 characters."""
    for line in reversed((err or b"").decode("utf-8", "replace").splitlines()):
        if line.strip():
            return line.strip()[:300]
    return ""
