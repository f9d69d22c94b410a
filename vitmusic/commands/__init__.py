"""One module per ``vitmusic`` subcommand: ``HELP``, ``add_arguments(parser)``, ``run(args) -> int``.

Commands parse arguments and call library functions; they hold no pipeline logic of their own.
"""
