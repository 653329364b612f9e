"""``python -m builder.server SOCKET LOCK IDLE``: the server process (started by ``spawn``)."""

import sys

from builder.server.daemon import main

sys.exit(main())
