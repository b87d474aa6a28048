"""``python -m langchain_localllm.cli``: the ``localllm`` command without the console script."""

import sys

from langchain_localllm.cli.main import main

sys.exit(main())
