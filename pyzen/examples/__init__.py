"""Examples that ship with pyzen, so they also run from an installed wheel."""
