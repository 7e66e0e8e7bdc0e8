"""`pyzen` (the console script) and `python -m pyzen`: print the configuration, then run the
main job, GPT pretraining and fine-tuning on the standard library's source (see
pyzen/examples/gpt). Arguments go to the GPT example (`pyzen --help`)."""
from __future__ import annotations

import sys

import pyzen
from pyzen.examples.gpt.__main__ import main as gpt_main


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if "-h" not in args and "--help" not in args:
        pyzen.show_config()
    gpt_main(args)


if __name__ == "__main__":
    main()
