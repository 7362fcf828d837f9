"""Entry point: `python run.py --config=configs/NAME.py[:ARGS] --workdir=DIR [--config.KEY=V]`.

The command line lives in the package (`contrastive.cli`), so an installed copy has it
too (`contrastive-run`, `python -m contrastive`); this file runs it from a checkout.
"""

from contrastive import cli

if __name__ == "__main__":
  cli.run()
