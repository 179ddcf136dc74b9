"""Applications built on the library: network builders and the demos.

Nothing below (core, layers, saving, engine) imports from here; the command
line (:mod:`nnscratch.cli`) and the scripts in ``experiments/`` do.
"""
