import sys

from consumer.boot import main

sys.exit(main())
