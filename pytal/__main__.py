"""``python -m pytal ...`` runs the ``pytal`` command."""
import sys

from pytal.cli import main

sys.exit(main())
