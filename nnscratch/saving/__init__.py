"""Models as files: an ``.npz`` archive of named arrays and a JSON description.

- :mod:`nnscratch.saving.npz`: reading an untrusted ``.npz`` archive, header
  before data, and writing one atomically; it knows nothing about models.
- :mod:`nnscratch.saving.schema`: the checks a description passes before any
  constructor sees it.
- :mod:`nnscratch.saving.model_file`: a model to a file and back, through the
  model's public ``get_config``/``from_config``/``state_dict``/
  ``load_state_dict`` only.
"""
