"""The ``nodefarm`` command line: the argparse entry point, the ``up`` supervisor, the submit client, serving the API."""
