"""``python -m lm_eval_tbd``: the ``lm-eval-tbd`` command."""

import sys

from lm_eval_tbd.app.cli import main

sys.exit(main())
