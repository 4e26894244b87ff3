"""The parts of a run, one module each; each returns the figures it measured."""
