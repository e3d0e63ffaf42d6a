import sys

from octseg.cli import main

sys.exit(main())
