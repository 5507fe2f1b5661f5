"""`python -m kubellm_dev`: the developer harness command line."""

from kubellm_dev.cli import main

main()
