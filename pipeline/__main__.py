"""`python -m pipeline`: the command line (see :mod:`pipeline.cli.commands`)."""

from pipeline.cli import commands

if __name__ == '__main__':
  commands.exit_with(commands.main())
