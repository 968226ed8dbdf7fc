import sys

from vifscope.cli import main

sys.exit(main())
