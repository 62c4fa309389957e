"""``python -m avrestore`` runs the command line."""

from avrestore.cli import main

main()
