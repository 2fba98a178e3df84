"""The ``.pth`` entry point: lets the stock ``lm_eval`` command find the TBD tasks with no flags.

``lm_eval_tbd.pth`` in site-packages imports this module at interpreter start, so it must stay
cheap: it imports nothing of lm-eval, torch or numpy, and only installs the import hook of
:mod:`lm_eval_tbd.patches` (which lists every change made to lm-eval, and why). Switch it off
with ``LM_EVAL_TBD_AUTOLOAD=0`` (then pass ``--include_path`` yourself).
"""

from __future__ import annotations

import sys

try:
    from lm_eval_tbd import patches

    if patches.autoload_enabled():
        patches.install()
except Exception as err:  # noqa: BLE001 - never break interpreter start-up
    print(f"lm_eval_tbd: task autoload disabled ({err})", file=sys.stderr)
