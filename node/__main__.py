import sys

from qkdnet.node.server import main

sys.exit(main())
