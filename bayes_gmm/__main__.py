"""``python -m bayes_gmm`` runs the ``bayes-gmm`` command."""

import sys

from .cli import main

sys.exit(main())
