"""`python -m contrastive --config=... --workdir=...`: the command line (`contrastive.cli`)."""

from contrastive import cli

if __name__ == "__main__":
  cli.run()
