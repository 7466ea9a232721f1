"""``python -m roost.redis.server start|stop|status``."""

import sys

from roost.redis.server.control import main

sys.exit(main())
