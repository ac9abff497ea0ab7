"""``python -m sandbox.cloudapi --port 0 --token T --seed 1 [--rules-file rules.json]``"""

import sys

from sandbox.cloudapi.cli import main

sys.exit(main())
