"""``python -m builder.server SOCKET LOCK IDLE``: the server process (started by ``spawn``)."""

import os
import sys

from builder.server.daemon import main

# Keep no descriptor the spawning command inherited (say a pipe whose reader waits for it to close):
# the server outlives that command by up to its idle timeout.
os.closerange(3, os.sysconf("SC_OPEN_MAX"))
sys.exit(main())
