"""The verdict when the model tells several classes of object apart (an organ and its plaques).

Pooled over classes, a codec that ruins a class holding a few percent of the objects would pass: the
criteria on the objects (shift, spread, outliers, losses) are dominated by the larger class, and no
per-class global watches the intensities or the positions. So each class of object is judged on its
own objects, by the rule of :func:`~noisestat.score.judge`, each at level alpha / C (C the classes
judged: a Bonferroni split, so that the union "some class is shown beyond" keeps its level alpha and
"every class is shown within" stays at most alpha); every global is judged in each. The codec is
tolerable when every class is, not tolerable when one is, inconclusive otherwise. A class without raw
objects has nothing to judge on its objects: its globals (its count, its size, its load) still are,
in the other classes' verdicts.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._verdict import Margins, Verdict

__all__ = ["judge_classes", "class_blocks"]


def class_blocks(rows: np.ndarray, n_total: int) -> np.ndarray:
    """``rows`` (one bool per raw object) repeated over the blocks of an array of simulated second
    acquisitions' eps stacked one block of every raw object after another (``n_total`` rows)."""
    n = len(rows)
    if n == 0 or n_total == 0:
        return np.zeros(n_total, dtype=bool)
    return np.tile(rows, n_total // n)


def judge_classes(judge_one, raw_classes: np.ndarray, classes, margins: Margins) -> Verdict:
    """The verdict over several classes of object (module docstring).

    ``judge_one(rows, margins)`` gives the :class:`Verdict` of the raw objects selected by ``rows``
    (bool per raw object) at the ``margins`` given (their alpha split over the classes);
    ``raw_classes``: each raw object's class; ``classes``: the model's classes of object.
    """
    raw_classes = np.asarray(raw_classes)
    present = [c for c in classes if (raw_classes == c).any()]
    if len(present) < 2:
        # one class holds every raw object (or none does): its verdict is the verdict
        return judge_one(np.ones(len(raw_classes), dtype=bool), margins)
    split = dataclasses.replace(margins, alpha=margins.alpha / len(present))
    verdicts = {c: judge_one(raw_classes == c, split) for c in present}
    outcomes = [v.outcome for v in verdicts.values()]
    if "not tolerable" in outcomes:
        outcome = "not tolerable"
    elif all(o == "tolerable" for o in outcomes):
        outcome = "tolerable"
    else:
        outcome = "inconclusive"
    reasons, criteria, needed = [], [], {}
    for c, v in verdicts.items():
        # the reasons of the classes that decide the outcome
        if v.outcome == outcome or outcome == "inconclusive" and v.outcome != "tolerable":
            reasons += [f"class {c}: {r}" for r in v.reasons]
        criteria += [{**k, "class": int(c)} for k in v.criteria]
        for key, value in v.needed.items():
            needed[key] = max(needed.get(key, 0), value)
    absent = [c for c in classes if c not in present]
    if absent and outcome != "tolerable":
        reasons.append(f"class {', '.join(map(str, absent))}: no raw object, judged by its globals only")
    first = next(iter(verdicts.values()))
    rule = (f"{first.rule} Several classes of object: each class ({', '.join(map(str, present))}) is judged on its own "
            f"objects by this rule at level alpha / {len(present)}, every global in each; tolerable when every class "
            f"is, not tolerable when one is.")
    return Verdict(outcome, tuple(reasons), tuple(criteria), rule, f"for each class of object, {first.admitted}",
                   margins.to_dict(), first.primary, needed)
