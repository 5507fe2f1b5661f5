"""`python -m kubellm_operator.crds write|check`: regenerate or check the checked-in CRDs."""

import sys

from kubellm_operator.crds import main

sys.exit(main(sys.argv))
