"""Compatibility path: this module is :mod:`lm_eval_tbd.core.stats`.

Kept because users' code, task YAMLs and ``make-task`` files written by earlier versions import
``lm_eval_tbd.stats``; both names are the same module object (so patches and private names work).
"""

import sys

from lm_eval_tbd.core import stats as _module

sys.modules[__name__] = _module
