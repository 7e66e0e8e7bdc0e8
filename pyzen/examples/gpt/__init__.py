"""A GPT pretrained on the Python standard library's source, then fine-tuned to tell which
standard-library package a snippet of code comes from. Run it with `pyzen` or
`python -m pyzen.examples.gpt`."""
