"""What a user runs: the ``isfr`` command (:mod:`~isfr.apps.cli`), inpainting photos
(:mod:`~isfr.apps.inpaint`) and the try-it widget of notebook 07 (:mod:`~isfr.apps.tryit`)."""
